/**
 * `/api/apps`: build settings arrive partial and are completed with the defaults, then checked whole.
 */
import { App, Fields, Storage } from "@kiln/core"
import { Effect, Schema, SchemaIssue } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { type BuildSettingsInput, CurrentPrincipal, KilnApi } from "../Api.ts"
import * as ApiError from "../ApiError.ts"
import { requireRole } from "./authorization.ts"
import { fromStorage, fromStorageWrite } from "./errors.ts"
import { canonicalId } from "./ids.ts"
import { list } from "./lists.ts"

const format = SchemaIssue.makeFormatterStandardSchemaV1()

/** The defaults with the given settings on top, checked as a whole (a `commands` app needs a build command). */
export const completeSettings = (input: typeof BuildSettingsInput.Type | undefined) =>
  Schema.decodeUnknownEffect(App.BuildSettings)({
    ...App.defaultBuildSettings,
    ...input,
    limits: { ...App.defaultBuildSettings.limits, ...input?.limits }
  }).pipe(
    Effect.mapError((error) => {
      const [issue] = format(error.issue).issues
      const path = ["payload", "build", ...(issue?.path ?? [])].join(".")
      return ApiError.badRequest("invalid_request", `${path}: ${issue?.message ?? "invalid build settings"}`)
    })
  )

export const layer = HttpApiBuilder.group(KilnApi, "apps", (handlers) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    return handlers
      .handle("list", ({ query }) => list(Fields.apps, query, storage.listApps))
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("write")
          const build = yield* completeSettings(payload.build)
          const workspaceId = yield* fromStorage(canonicalId("wsp", payload.workspaceId))
          return yield* fromStorageWrite(
            storage.createApp(principal.access, {
              workspaceId,
              handle: payload.handle,
              name: payload.name,
              kind: payload.kind,
              build
            })
          )
        })
      )
      .handle("get", ({ params }) =>
        Effect.flatMap(Effect.service(CurrentPrincipal), (principal) =>
          fromStorage(
            Effect.flatMap(canonicalId("app", params.id), (id) => storage.getApp(principal.access, id))
          )
        )
      )
  })
)
