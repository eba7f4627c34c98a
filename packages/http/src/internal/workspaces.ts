/**
 * `/api/workspaces`. Creating one needs an admin token for all workspaces: a token scoped to some could
 * not see the workspace it made.
 */
import { Access, Fields, PushSignature, Storage } from "@kiln/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal, KilnApi } from "../Api.ts"
import * as ApiError from "../ApiError.ts"
import { requireRole } from "./authorization.ts"
import { fromStorage } from "./errors.ts"
import { canonicalId } from "./ids.ts"
import { list } from "./lists.ts"

/**
 * The caller's access narrowed to the workspace a `workspace_id` parameter names (unchanged without one);
 * a workspace the caller cannot see is not found, as a missing one is.
 */
export const narrowedTo = (storage: Storage.StorageShape, access: Access.Access, text: string | undefined) =>
  text === undefined
    ? Effect.succeed(access)
    : fromStorage(
        Effect.flatMap(canonicalId("wsp", text), (id) => storage.getWorkspace(access, id)).pipe(
          Effect.map((workspace) => Access.workspaces([workspace.id]))
        )
      )

export const layer = HttpApiBuilder.group(KilnApi, "workspaces", (handlers) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    return handlers
      .handle("list", ({ query }) => list(Fields.workspaces, query, storage.listWorkspaces))
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("admin")
          if (!principal.allWorkspaces) {
            return yield* ApiError.Forbidden.of(
              "creating a workspace needs an admin token for all workspaces"
            )
          }
          return yield* Effect.orDie(storage.createWorkspace(payload))
        })
      )
      .handle("get", ({ params }) =>
        Effect.flatMap(Effect.service(CurrentPrincipal), (principal) =>
          fromStorage(
            Effect.flatMap(canonicalId("wsp", params.id), (id) => storage.getWorkspace(principal.access, id))
          )
        )
      )
      .handle("pushSecret", ({ params }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("admin")
          const workspace = yield* fromStorage(
            Effect.flatMap(canonicalId("wsp", params.id), (id) => storage.getWorkspace(principal.access, id))
          )
          const key = (yield* PushSignature.PushKey).secret
          if (key === undefined) return yield* ApiError.ServiceUnavailable.pushEvents
          return {
            secret: PushSignature.secretFor(key, workspace.id),
            header: PushSignature.header,
            url: "/api/events/push"
          }
        })
      )
  })
)
