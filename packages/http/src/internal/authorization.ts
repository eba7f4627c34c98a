/**
 * The `Authorization` middleware: a bearer credential becomes the `CurrentPrincipal`, through whatever
 * `Authenticator` the host provides. Any failure is the same 401, with no detail. Once the caller is known,
 * a JSON body that is not valid UTF-8 is refused (400).
 */
import { type ApiToken, Authenticator } from "@kiln/core"
import { Effect, Layer, Redacted } from "effect"
import { Authorization, CurrentPrincipal } from "../Api.ts"
import * as ApiError from "../ApiError.ts"
import { notUtf8, refusingNonUtf8 } from "./requestErrors.ts"

/** A bearer credential's principal, or `unauthorized` (each surface answers 401 in its own body). */
export const authenticate = <E>(
  authenticator: Authenticator.AuthenticatorShape,
  credential: Redacted.Redacted<string>,
  unauthorized: E
) =>
  authenticator
    .authenticate(Redacted.value(credential))
    .pipe(Effect.catchTags({ Unauthenticated: () => Effect.fail(unauthorized), StorageError: Effect.die }))

export const layer = Layer.effect(
  Authorization,
  Effect.gen(function* () {
    const authenticator = yield* Authenticator.Authenticator
    return Authorization.of({
      bearer: (httpEffect, { credential, endpoint }) =>
        Effect.flatMap(authenticate(authenticator, credential, ApiError.Unauthorized.instance), (principal) =>
          Effect.provideService(
            refusingNonUtf8(httpEffect, endpoint, ApiError.badRequest("invalid_request", notUtf8)),
            CurrentPrincipal,
            principal
          )
        )
    })
  })
)

const roleNames: Record<ApiToken.Role, string> = { read: "read", write: "write", admin: "admin" }

/** The caller, when its role includes `role`; otherwise 403. */
export const requireRole = (role: ApiToken.Role) =>
  Effect.flatMap(Effect.service(CurrentPrincipal), (principal) =>
    Authenticator.hasRole(principal, role)
      ? Effect.succeed(principal)
      : Effect.fail(ApiError.Forbidden.of(`this needs a token with the ${roleNames[role]} role`))
  )
