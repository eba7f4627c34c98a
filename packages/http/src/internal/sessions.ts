/**
 * Dashboard sessions: a Kiln token exchanged for a cookie, so the browser never keeps the token where a
 * script could read it. The cookie is HttpOnly, SameSite=Strict, Secure when the page was reached over
 * TLS, scoped to the path Kiln is mounted at, and holds a signed value (`signed.ts`) naming the token, not
 * its secret. Every request looks the token up again, so a session never outlives the token's revocation
 * or expiry, and it lasts 12 hours at most.
 *
 * A request that changes something must also carry `x-kiln-csrf`, a value derived from the cookie that
 * only a page of this origin can have read (from the session answer): another site's form or script can
 * make the browser send the cookie, never the header. A WebSocket opened with the cookie must come from a
 * page of the same origin (`Origin`), for the same reason.
 */
import { timingSafeEqual } from "node:crypto"
import { Access, Authenticator, type Id, type Storage } from "@kiln/core"
import { Clock, DateTime, Effect, Result } from "effect"
import type { HttpServerRequest } from "effect/http"
import * as ApiError from "../ApiError.ts"
import * as Signed from "./signed.ts"

export const cookieName = "kiln_session"
export const csrfHeader = "x-kiln-csrf"
export const lifetimeMs = 12 * 3600 * 1000
const maxLength = 512

interface Payload {
  /** The token. */
  readonly t: string
  /** Expiry, epoch milliseconds. */
  readonly e: number
}

const sessionKey = Signed.keyFor("kiln dashboard session")
const csrfKey = Signed.keyFor("kiln dashboard csrf")

/** The CSRF value of a session: only its holder, told it on sign-in, can send it. */
export const csrfOf = (session: string) =>
  Effect.map(csrfKey, (key) => Signed.tagOf(key, session).toString("base64url"))

/**
 * A session for a principal of one of Kiln's own tokens: the cookie's value, its CSRF value and when it
 * ends (in 12 hours, or when the token expires if sooner).
 */
export const issue = (principal: Authenticator.Principal, tokenExpiresAt: DateTime.Utc | null) =>
  Effect.gen(function* () {
    if (principal.tokenId === null) {
      return yield* ApiError.Forbidden.of("dashboard sessions are issued for Kiln's own tokens")
    }
    const now = yield* Clock.currentTimeMillis
    const ends = Math.min(
      now + lifetimeMs,
      tokenExpiresAt === null ? Infinity : DateTime.toEpochMillis(tokenExpiresAt)
    )
    const session = Signed.sign(yield* sessionKey, { t: principal.tokenId, e: ends } satisfies Payload)
    return { session, csrfToken: yield* csrfOf(session), expiresAt: DateTime.makeUnsafe(ends) }
  })

/** The principal a session cookie stands for while it is this server's, unexpired, and its token is live. */
export const redeem = (storage: Storage.StorageShape, session: string) =>
  Effect.gen(function* () {
    const verified = Signed.verify<Payload>(yield* sessionKey, session, maxLength)
    const now = yield* Clock.currentTimeMillis
    if (Result.isFailure(verified) || now >= verified.success.e) return yield* ApiError.Unauthorized.instance
    const token = yield* storage.getToken(Access.all, verified.success.t as Id.TokenId).pipe(
      Effect.catchTags({
        StorageNotFound: () => Effect.fail(ApiError.Unauthorized.instance),
        // As the authenticator does: a store that cannot answer is the server's fault, a 500.
        StorageError: Effect.die
      })
    )
    if (!Authenticator.isLive(token, now)) return yield* ApiError.Unauthorized.instance
    return { principal: Authenticator.principalOf(token), expiresAt: DateTime.makeUnsafe(verified.success.e) }
  })

/**
 * The token a session cookie names, when this server signed it and it has not expired, read without a
 * lookup: what the rate limits count a dashboard's requests against.
 */
export const tokenOf = (session: string) =>
  Effect.gen(function* () {
    const verified = Signed.verify<Payload>(yield* sessionKey, session, maxLength)
    return Result.isSuccess(verified) && (yield* Clock.currentTimeMillis) < verified.success.e
      ? verified.success.t
      : undefined
  })

/** Methods that change nothing, which need no CSRF value. */
const safe = new Set(["GET", "HEAD", "OPTIONS"])

/** Refuses a state-changing request whose CSRF value is missing or wrong for its session. */
export const checkCsrf = (request: HttpServerRequest.HttpServerRequest, session: string) =>
  Effect.gen(function* () {
    if (safe.has(request.method)) return
    const given = Buffer.from(request.headers[csrfHeader] ?? "")
    const expected = Buffer.from(yield* csrfOf(session))
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return yield* ApiError.Forbidden.of(
        `a request signed in with the dashboard's session cookie must send its ${csrfHeader} header`
      )
    }
  })

/**
 * Whether a WebSocket upgrade that carries the cookie comes from a page of this origin: the `Origin` a
 * browser always sends names the host the request was sent to.
 */
export const sameOrigin = (request: HttpServerRequest.HttpServerRequest): boolean => {
  const origin = request.headers.origin
  if (origin === undefined) return false
  try {
    const host = request.headers["x-forwarded-host"]?.split(",")[0]?.trim() ?? request.headers.host
    return new URL(origin).host === host
  } catch {
    return false
  }
}

/** The session cookie of a request, if it has one. */
export const sessionOf = (request: HttpServerRequest.HttpServerRequest): string | undefined =>
  request.cookies[cookieName]
