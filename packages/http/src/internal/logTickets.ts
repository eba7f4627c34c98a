/**
 * Tickets for the log streams. A browser's `new WebSocket(url)` cannot send an `Authorization` header, and a
 * token in a URL would live on in histories and logs; so the REST API hands out a ticket that a stream URL
 * carries as `?ticket=…` instead. A ticket names one build and the Kiln token that asked for it, expires
 * after 60 seconds, and is signed with HMAC-SHA256 under a key derived from the server's cursor key
 * (`KILN_CURSOR_SECRET`), so every process that shares that key accepts it. Connecting looks the token up
 * again: a ticket never outlives the token's revocation or expiry, and the build is read with the token's
 * own scope.
 */
import { Access, Authenticator, type Build, type Id, type Storage } from "@kiln/core"
import { Clock, DateTime, Effect, Result } from "effect"
import { HttpServerRequest } from "effect/http"
import * as ApiError from "../ApiError.ts"
import * as Signed from "./signed.ts"

export const lifetimeMs = 60_000
/** Longer than any ticket this server issues: anything longer is refused unread. */
const maxLength = 512

interface Payload {
  /** The build. */
  readonly b: string
  /** The token. */
  readonly t: string
  /** Expiry, epoch milliseconds. */
  readonly e: number
}

/** The cursor key, put to this one use only: a cursor's tag can never pass for a ticket's. */
const ticketKey = Signed.keyFor("kiln log stream ticket")

const refused = (message: string) => new ApiError.Unauthorized({ error: "unauthorized", message })

/**
 * A ticket for following the build `find` answers with the caller's token, and when it expires (in 60
 * seconds). Only Kiln's own tokens can be looked up again when the ticket is used, so a principal from
 * another authenticator gets a 403 that names the other way in, before the build is looked for.
 */
export const issue = <E, R>(
  principal: Authenticator.Principal,
  find: Effect.Effect<{ readonly id: Build.Build["id"] }, E, R>
) =>
  Effect.gen(function* () {
    if (principal.tokenId === null) {
      return yield* ApiError.Forbidden.of(
        "log stream tickets are issued for Kiln's own tokens; offer the credential as the WebSocket subprotocol bearer.<credential> instead"
      )
    }
    const build = yield* find
    const now = yield* Clock.currentTimeMillis
    const key = yield* ticketKey
    const payload: Payload = { b: build.id, t: principal.tokenId, e: now + lifetimeMs }
    return { ticket: Signed.sign(key, payload), expiresAt: DateTime.makeUnsafe(payload.e) }
  })

/**
 * The principal a ticket stands for, when it is this server's, unaltered, unexpired, for `buildId`, and its
 * token is still live. Every refusal is a 401; the message says which, as none of it is a secret.
 */
export const redeem = (storage: Storage.StorageShape, ticket: string, buildId: string) =>
  Effect.gen(function* () {
    const verified = Signed.verify<Payload>(yield* ticketKey, ticket, maxLength)
    if (Result.isFailure(verified)) {
      return yield* refused(
        verified.failure === "malformed"
          ? "not a ticket this API issued"
          : "the ticket was altered, or issued by another deployment"
      )
    }
    const payload = verified.success
    if ((yield* Clock.currentTimeMillis) >= payload.e) {
      return yield* refused("the ticket has expired: ask for another")
    }
    if (payload.b !== buildId) return yield* refused("the ticket is for another build")
    const token = yield* storage
      .getToken(Access.all, payload.t as Id.TokenId)
      .pipe(Effect.catchTag("StorageNotFound", () => Effect.fail(ApiError.Unauthorized.instance)))
    if (!Authenticator.isLive(token, yield* Clock.currentTimeMillis)) {
      return yield* ApiError.Unauthorized.instance
    }
    return Authenticator.principalOf(token)
  })

/** A host as a `Host` header names one: a name or an address, and a port. Anything else is not used. */
const hostPattern = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/

/**
 * Where a ticket is used: the stream beside the endpoint that issued it (`…/logs/ticket` → `…/logs/stream`),
 * as an absolute `ws:`/`wss:` URL for the host the client reached (a proxy's `X-Forwarded-Host` and
 * `X-Forwarded-Proto` win), with the ticket in its query.
 */
export const streamUrl = (ticket: string) =>
  HttpServerRequest.HttpServerRequest.useSync((request) => {
    const first = (name: string) => request.headers[name]?.split(",")[0]?.trim()
    // The path with any prefix the host mounts Kiln under; a web handler's request has the whole URL.
    const url = new URL(request.originalUrl, "http://localhost")
    const host = [first("x-forwarded-host"), request.headers.host].find(
      (candidate) => candidate !== undefined && hostPattern.test(candidate)
    )
    if (host !== undefined) url.host = host
    url.protocol = (first("x-forwarded-proto") ?? url.protocol.slice(0, -1)) === "https" ? "wss:" : "ws:"
    url.pathname = url.pathname.replace(/\/logs\/ticket\/?$/, "/logs/stream")
    url.search = new URLSearchParams({ ticket }).toString()
    return url.toString()
  })
