/**
 * The `Authorization` middleware: a bearer credential becomes the `CurrentPrincipal`, through whatever
 * `Authenticator` the host provides. Any failure is the same 401, with no detail. Once the caller is known,
 * a JSON body that is not valid UTF-8 is refused (400).
 */
import { type ApiToken, Authenticator, Storage } from "@kiln/core"
import { Effect, Layer, Redacted } from "effect"
import { HttpServerRequest } from "effect/http"
import { Authorization, CurrentPrincipal } from "../Api.ts"
import * as ApiError from "../ApiError.ts"
import { notUtf8, refusingNonUtf8 } from "./requestErrors.ts"
import * as Sessions from "./sessions.ts"

/** A bearer credential's principal, or `unauthorized` (each surface answers 401 in its own body). */
export const authenticate = <E>(
  authenticator: Authenticator.AuthenticatorShape,
  credential: Redacted.Redacted<string>,
  unauthorized: E
) =>
  authenticator
    .authenticate(Redacted.value(credential))
    .pipe(Effect.catchTags({ Unauthenticated: () => Effect.fail(unauthorized), StorageError: Effect.die }))

/**
 * The principal of the dashboard's session cookie, checking the CSRF header of a request that changes
 * something; 401 without a live session, 403 without the header.
 */
const sessionPrincipal = (storage: Storage.StorageShape) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const session = Sessions.sessionOf(request)
    if (session === undefined) return yield* ApiError.Unauthorized.instance
    const { principal } = yield* Sessions.redeem(storage, session)
    yield* Sessions.checkCsrf(request, session)
    return principal
  })

/**
 * The caller: by its bearer credential when it sends one, else by the dashboard's session cookie; each
 * surface answers a refusal in its own body (`unauthorized`, `forbidden`).
 */
export const bearerOrSession = <U, F>(
  authenticator: Authenticator.AuthenticatorShape,
  storage: Storage.StorageShape,
  credential: Redacted.Redacted<string>,
  unauthorized: U,
  forbidden: (message: string) => F
) =>
  Redacted.value(credential) !== ""
    ? authenticate(authenticator, credential, unauthorized)
    : sessionPrincipal(storage).pipe(
        Effect.mapError((error) =>
          error instanceof ApiError.Forbidden ? forbidden(error.message) : unauthorized
        )
      )

export const layer = Layer.effect(
  Authorization,
  Effect.gen(function* () {
    const authenticator = yield* Authenticator.Authenticator
    const storage = yield* Storage.Storage
    const serve = <A, E, R>(
      httpEffect: Effect.Effect<A, E, R>,
      endpoint: Parameters<typeof refusingNonUtf8>[1],
      principal: Authenticator.Principal
    ) =>
      Effect.provideService(
        refusingNonUtf8(httpEffect, endpoint, () => ApiError.badRequest("invalid_request", notUtf8)),
        CurrentPrincipal,
        principal
      )
    return Authorization.of({
      bearer: (httpEffect, { credential, endpoint }) =>
        Effect.flatMap(
          bearerOrSession(
            authenticator,
            storage,
            credential,
            ApiError.Unauthorized.instance,
            ApiError.Forbidden.of
          ),
          (principal) => serve(httpEffect, endpoint, principal)
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
