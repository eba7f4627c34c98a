/**
 * `/api/tokens`, for admins. A token can grant only what its creator holds: no higher role, no
 * workspace outside the creator's scope (such a workspace is not found, as everywhere), and all
 * workspaces only from a token that has them all. The secret is in the creation response and nowhere else.
 */
import { Access, Authenticator, Fields, Storage } from "@kiln/core"
import { DateTime, Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { KilnApi } from "../Api.ts"
import * as ApiError from "../ApiError.ts"
import { requireRole } from "./authorization.ts"
import { fromStorage } from "./errors.ts"
import { canonicalId } from "./ids.ts"
import { list } from "./lists.ts"

export const layer = HttpApiBuilder.group(KilnApi, "tokens", (handlers) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const authenticator = yield* Authenticator.Authenticator
    return handlers
      .handle("list", ({ query }) =>
        Effect.andThen(requireRole("admin"), list(Fields.tokens, query, storage.listTokens))
      )
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("admin")
          if (!Authenticator.hasRole(principal, payload.role)) {
            return yield* ApiError.Forbidden.of(
              `a token cannot grant a role above its own (${principal.role})`
            )
          }
          if (payload.workspaceIds === "*" && !principal.allWorkspaces) {
            return yield* ApiError.Forbidden.of("only a token for all workspaces can grant all workspaces")
          }
          // A token that is expired when it is made could never be used: that is a mistake in the request.
          if (payload.expiresAt != null && !(yield* DateTime.isFuture(payload.expiresAt))) {
            return yield* ApiError.badRequest(
              "invalid_request",
              `payload.expiresAt: expected a time in the future, not ${DateTime.formatIso(payload.expiresAt)}`
            )
          }
          // A workspace outside the creator's scope is not found, as one named by text that is no id.
          const workspaceIds =
            payload.workspaceIds === "*"
              ? payload.workspaceIds
              : yield* fromStorage(
                  Effect.forEach(payload.workspaceIds, (text) =>
                    Effect.filterOrFail(
                      canonicalId("wsp", text),
                      (id) => Access.allows(principal.access, id),
                      () => Storage.NotFound.of("workspace", text)
                    )
                  )
                )
          const { token, secret } = yield* fromStorage(
            Authenticator.issueToken({
              name: payload.name,
              workspaceIds,
              role: payload.role,
              expiresAt: payload.expiresAt ?? null
            }).pipe(Effect.provideService(Storage.Storage, storage))
          )
          return { ...token, token: secret }
        })
      )
      .handle("get", ({ params }) =>
        Effect.flatMap(requireRole("admin"), (principal) =>
          fromStorage(
            Effect.flatMap(canonicalId("tok", params.id), (id) => storage.getToken(principal.access, id))
          )
        )
      )
      .handle("revoke", ({ params }) =>
        Effect.flatMap(requireRole("admin"), (principal) =>
          fromStorage(
            Effect.flatMap(canonicalId("tok", params.id), (id) => storage.revokeToken(principal.access, id))
          ).pipe(
            // This process stops trusting it now; others within the authenticator's cache time.
            Effect.tap((token) => authenticator.forget(token.id))
          )
        )
      )
  })
)
