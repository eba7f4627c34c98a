/**
 * What every accounts request goes through: authentication (the canonical API's, failing in the
 * envelope), the role it needs, the account it names — a workspace the caller may see, to which every
 * lookup is then scoped, so an object of another account is a 404 exactly like a missing one — and its
 * failures in the envelope.
 */
import { Access, Authenticator, Storage } from "@kiln/core"
import { Effect, Layer, type SchemaIssue } from "effect"
import { HttpApiMiddleware } from "effect/http-api"
import {
  AccountsAuthorization,
  AccountsBadRequest,
  AccountsConflict,
  AccountsForbidden,
  AccountsNotFound,
  AccountsPrincipal,
  AccountsRequestErrors,
  AccountsUnauthorized
} from "../AccountsApi.ts"
import { bearerOrSession } from "./authorization.ts"
import { isA, storageAnswers } from "./errors.ts"
import { lookUp } from "./ids.ts"
import * as RequestErrors from "./requestErrors.ts"

/** `AccountsAuthorization`: the same authentication as the canonical API, failing in the envelope. */
export const authorizationLayer = Layer.effect(
  AccountsAuthorization,
  Effect.gen(function* () {
    const authenticator = yield* Authenticator.Authenticator
    const storage = yield* Storage.Storage
    const serve = <A, E, R>(
      httpEffect: Effect.Effect<A, E, R>,
      endpoint: Parameters<typeof RequestErrors.refusingNonUtf8>[1],
      principal: Authenticator.Principal
    ) =>
      Effect.provideService(
        RequestErrors.refusingNonUtf8(httpEffect, endpoint, () =>
          AccountsBadRequest.of(RequestErrors.notUtf8)
        ),
        AccountsPrincipal,
        principal
      )
    return AccountsAuthorization.of({
      bearer: (httpEffect, { credential, endpoint }) =>
        Effect.flatMap(
          bearerOrSession(
            authenticator,
            storage,
            credential,
            AccountsUnauthorized.instance,
            AccountsForbidden.of
          ),
          (principal) => serve(httpEffect, endpoint, principal)
        )
    })
  })
)

/** The first problem of a decoding failure, as a 400 in the envelope. */
export const badRequestOf = (root: string, issue: SchemaIssue.Issue) => {
  const [first] = RequestErrors.issuesOf(root, issue)
  return AccountsBadRequest.of(first === undefined ? `${root}: invalid` : `${first.path}: ${first.message}`)
}

export const requestErrorsLayer = HttpApiMiddleware.layerSchemaErrorTransform(
  AccountsRequestErrors,
  RequestErrors.transform((error) => Effect.fail(badRequestOf(error.kind.toLowerCase(), error.cause.issue)))
)

export const writer = Effect.flatMap(Effect.service(AccountsPrincipal), (principal) =>
  Authenticator.hasRole(principal, "write")
    ? Effect.succeed(principal)
    : Effect.fail(AccountsForbidden.of("this needs a token with the write role"))
)

/** Storage's NotFound under the dialect's own words for the missing thing. */
export const notFoundAs = <A, E, R>(message: string, effect: Effect.Effect<A, E, R>) =>
  Effect.catchIf(effect, isA(Storage.NotFound), () => Effect.fail(AccountsNotFound.of(message)))

/** Storage's NotFound and Conflict in the envelope; a storage failure is a defect (a 500). */
export const { fromStorage, fromStorageWrite } = storageAnswers(AccountsNotFound.of, AccountsConflict.of)

/** The caller's view of one account: a workspace it may see, or 404. */
export const accountOf = (storage: Storage.StorageShape, accountId: string) =>
  Effect.gen(function* () {
    const principal = yield* Effect.service(AccountsPrincipal)
    const workspace = yield* fromStorage(
      lookUp(
        "wsp",
        accountId,
        (id) => storage.getWorkspace(principal.access, id),
        AccountsNotFound.of("Account not found")
      )
    )
    return { principal, access: Access.workspaces([workspace.id]) }
  })

/** The script (an app) the path or body names, in the account. */
export const scriptOf = (storage: Storage.StorageShape, access: Access.Access, text: string) =>
  fromStorage(
    lookUp("app", text, (id) => storage.getApp(access, id), AccountsNotFound.of("Script not found"))
  )
