/**
 * What every WebSocket that follows something shares (a build's log, the event feed): the caller's
 * credential from the upgrade request, refusals answered before the upgrade, and a connection that sends
 * only while the client keeps up.
 *
 * A follower that does not read gets backpressure: Kiln sends only while the connection holds less than
 * `maxBufferedBytes` the client has not taken, and a route reads storage only as it sends, so a stalled
 * follower costs that buffer and the page it sends from. One that takes nothing for `stallTimeoutMs` is closed with
 * `slowConsumerCode`, its reason naming the cursor to resume from: the close frame follows every message
 * sent.
 *
 * A follower whose token stops granting access while it follows (revoked, expired) is closed within
 * `tokenCheckMs` and the authenticator's cache: `tokenRevokedCode` or `tokenExpiredCode`, the reason in words.
 */
import { IncomingMessage } from "node:http"
import type { Duplex } from "node:stream"
import { Access, Authenticator, type Storage } from "@kiln/core"
import { Array as Arr, Clock, Data, Deferred, Effect, identity } from "effect"
import { type HttpServerRequest, HttpServerResponse } from "effect/http"
import { Socket } from "effect/socket"
import { logStreamTokenProtocol } from "../Api.ts"
import * as ApiError from "../ApiError.ts"
import { respond } from "./responses.ts"
import * as Sessions from "./sessions.ts"
import * as WsFrames from "./wsFrames.ts"

/** The bearer credential of an upgrade request: the Authorization header, or a `bearer.<token>` subprotocol. */
export const credentialOf = (headers: Readonly<Record<string, string | undefined>>): string | undefined => {
  const authorization = headers.authorization
  if (authorization !== undefined && /^Bearer /i.test(authorization)) return authorization.slice(7).trim()
  return (headers["sec-websocket-protocol"] ?? "")
    .split(",")
    .map((offered) => offered.trim())
    .find((offered) => offered.startsWith(logStreamTokenProtocol))
    ?.slice(logStreamTokenProtocol.length)
}

/**
 * The principal of the dashboard's session cookie, on an upgrade from a page of this origin (a browser
 * sends the cookie with any site's WebSocket to here, but names the page's origin); otherwise a 401.
 */
export const sessionPrincipal = (
  storage: Storage.StorageShape,
  request: HttpServerRequest.HttpServerRequest
) => {
  const session = Sessions.sessionOf(request)
  return session === undefined || !Sessions.sameOrigin(request)
    ? Effect.fail(ApiError.Unauthorized.instance)
    : Effect.map(Sessions.redeem(storage, session), ({ principal }) => principal)
}

/** Whether the request asks to upgrade to a WebSocket. */
export const isUpgrade = (request: HttpServerRequest.HttpServerRequest) =>
  (request.headers.upgrade ?? "").toLowerCase() === "websocket"

/** A plain request (no WebSocket upgrade) is told what the route needs: 426 names the protocol. */
export const upgradeRequired = HttpServerResponse.jsonUnsafe(
  {
    error: "upgrade_required",
    message: "this route is a WebSocket: send the GET with Upgrade: websocket (a WebSocket client does)"
  },
  { status: 426, headers: { upgrade: "websocket" } }
)

/** How much a follower may fall behind, and for how long it may take nothing. */
export interface Limits {
  /** Bytes sent and not yet taken by the client, past which Kiln stops sending and reading (default 1 MiB). */
  readonly maxBufferedBytes?: number | undefined
  /** How long a follower past that bound may take nothing before it is closed with 4008 (default 30 s). */
  readonly stallTimeoutMs?: number | undefined
  /** How often an open follower checks that its token still grants access (default 2 s). */
  readonly tokenCheckMs?: number | undefined
}

/** The close code for a follower that stopped reading: resume from the cursor in the close reason. */
export const slowConsumerCode = 4008
/** The close code for a follower whose token expired while it followed (or that the host's authenticator no longer takes). */
export const tokenExpiredCode = 4401
/** The close code for a follower whose token was revoked while it followed. */
export const tokenRevokedCode = 4403

/** How a follower ends when its credential no longer grants access: its close frame. */
export interface Ending {
  readonly code: number
  readonly reason: string
}

/**
 * Succeeds once the principal a follower was let in as no longer grants access. The credential it came with
 * is authenticated again (the authenticator's cache makes one lookup serve every stream of a token); a
 * follower let in by a ticket has its token read from storage. A check that storage cannot answer is no
 * answer: the follower goes on, and the next check decides.
 */
export const tokenEnded = (input: {
  readonly storage: Storage.StorageShape
  readonly authenticator: Authenticator.AuthenticatorShape
  readonly principal: Authenticator.Principal
  readonly credential: string | undefined
  readonly limits: Limits
}): Effect.Effect<Ending> => {
  const { storage, authenticator, principal, credential } = input
  const tokenId = principal.tokenId
  const stored = tokenId === null ? undefined : storage.getToken(Access.all, tokenId)
  const live: Effect.Effect<boolean, Storage.StorageError> =
    credential !== undefined
      ? authenticator.authenticate(credential).pipe(
          Effect.as(true),
          Effect.catchTag("Unauthenticated", () => Effect.succeed(false))
        )
      : stored !== undefined
        ? Effect.zipWith(stored, Clock.currentTimeMillis, Authenticator.isLive).pipe(
            Effect.catchTag("StorageNotFound", () => Effect.succeed(false))
          )
        : Effect.never
  const why: Effect.Effect<Ending> =
    stored === undefined
      ? Effect.succeed({ code: tokenExpiredCode, reason: "credentials no longer accepted" })
      : stored.pipe(
          Effect.map(
            (token): Ending =>
              token.revokedAt !== null
                ? { code: tokenRevokedCode, reason: "token revoked" }
                : { code: tokenExpiredCode, reason: "token expired" }
          ),
          Effect.catch(() => Effect.succeed({ code: tokenRevokedCode, reason: "token revoked" }))
        )
  const check = Effect.sleep(input.limits.tokenCheckMs ?? 2000).pipe(
    Effect.andThen(live),
    Effect.catchTag("StorageError", () => Effect.succeed(true))
  )
  return Effect.andThen(Effect.repeat(check, { while: (stillLive) => stillLive }), why)
}

export class Stalled extends Data.TaggedError("Stalled") {}

/**
 * The connection under the WebSocket, when a Node server upgrades it (elsewhere a follower gets no
 * backpressure): Effect's socket writer sends without waiting, so this write buffer is where a client that
 * does not read shows.
 */
const connectionOf = (request: HttpServerRequest.HttpServerRequest): Duplex | undefined =>
  request.source instanceof IncomingMessage ? request.source.socket : undefined

/** Backpressure and batching on the connection under a follower's WebSocket. */
interface Flow {
  /**
   * Waits until the connection holds at most `maxBufferedBytes` unsent; fails with `Stalled` once the client
   * has taken nothing for `stallTimeoutMs`. A slow client that keeps reading is never stalled.
   */
  readonly room: Effect.Effect<void, Stalled>
  /** Runs `effect` with the connection corked, so the messages it sends leave in one system call, not one each. */
  readonly batch: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

const flowOf = (connection: Duplex | undefined, limits: Limits): Flow => {
  if (connection === undefined) return { room: Effect.void, batch: identity }
  const maxBytes = limits.maxBufferedBytes ?? 1024 * 1024
  const drained = Effect.callback<void>((resume) => {
    const stop = () => connection.off("drain", done).off("close", done)
    const done = () => {
      stop()
      resume(Effect.void)
    }
    connection.on("drain", done).on("close", done)
    return Effect.sync(stop)
  })
  const full = () => connection.writableLength > maxBytes && !connection.destroyed
  const wait = (before: number): Effect.Effect<void, Stalled> =>
    Effect.suspend(() =>
      full()
        ? drained.pipe(
            Effect.timeoutOrElse({
              duration: limits.stallTimeoutMs ?? 30_000,
              orElse: () => (connection.writableLength < before ? Effect.void : Effect.fail(new Stalled()))
            }),
            Effect.andThen(Effect.suspend(() => wait(connection.writableLength)))
          )
        : Effect.void
    )
  return {
    room: Effect.suspend(() => {
      // A client gone mid-page: the follower ends here rather than sending the rest of the log to nobody.
      if (connection.destroyed) return Effect.fail(new Stalled())
      if (!full()) return Effect.void
      // Corked bytes never drain: send them before waiting, and cork again after.
      if (connection.writableCorked === 0) return wait(connection.writableLength)
      connection.uncork()
      return Effect.ensuring(
        wait(connection.writableLength),
        Effect.sync(() => connection.cork())
      )
    }),
    batch: (effect) =>
      Effect.acquireUseRelease(
        Effect.sync(() => connection.cork()),
        () => effect,
        () => Effect.sync(() => connection.uncork())
      )
  }
}

const closingError = new Socket.SocketError({
  reason: new Socket.SocketWriteError({ cause: new Error("the WebSocket is closing") })
})

/** A follower's side of an open WebSocket. */
export interface Connection {
  /** Sends one text message once the connection has room for it. */
  readonly send: (text: string) => Effect.Effect<void, Stalled | Socket.SocketError>
  /**
   * Sends messages already framed, in order, once the connection has room: as one write of their frames on
   * a Node connection, else through the socket one by one.
   */
  readonly sendFrames: (frames: WsFrames.Slice) => Effect.Effect<void, Stalled | Socket.SocketError>
  /** Runs `effect` (sends, usually) with the connection corked: what it sends leaves in one system call. */
  readonly batch: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Closes the WebSocket normally (or with another code), after everything sent. */
  readonly close: (code: number, reason: string) => Effect.Effect<void, Socket.SocketError>
}

/**
 * Upgrades the request and runs `follow` on the WebSocket until it ends, the client goes away, or `ended`
 * says the caller's access has (then the connection closes as it says). A follower that stalls is closed
 * with `slowConsumerCode` and `stalledReason()` (which names the cursor to resume from, read when it
 * stalls). Needs a scope: the socket lives in it.
 */
export const serve = <E, R>(
  request: HttpServerRequest.HttpServerRequest,
  limits: Limits,
  follow: (connection: Connection) => Effect.Effect<void, E | Stalled, R>,
  stalledReason: () => string,
  ended: Effect.Effect<Ending>
) =>
  Effect.gen(function* () {
    const raw = connectionOf(request)
    const flow = flowOf(raw, limits)
    const socket = yield* request.upgrade
    const { pull } = yield* socket.reader
    const writer = yield* socket.writer
    // The client sends nothing; reading only tells when it has gone.
    const gone = yield* Deferred.make<void>()
    yield* Effect.forkScoped(
      Effect.forever(pull).pipe(Effect.ignore, Effect.andThen(Deferred.succeed(gone, undefined)))
    )
    // On a Node connection every message goes out as frames written to it, no data message through the
    // WebSocket library (which leaves control frames to it), so nothing the library holds back (a message it
    // compresses) can come after a frame written here. Nothing is written once either side began to close.
    let closing = false
    if (raw !== undefined) {
      const stopWatching = WsFrames.watchClose(raw, () => {
        closing = true
      })
      yield* Effect.addFinalizer(() => Effect.sync(stopWatching))
    }
    const close = (code: number, reason: string) =>
      Effect.suspend(() => {
        closing = true
        return writer.write(new Socket.CloseEvent(code, reason))
      })
    const write = (bytes: Uint8Array) =>
      Effect.andThen(
        flow.room,
        Effect.suspend(() => {
          if (closing || raw!.writableEnded) return Effect.fail(closingError)
          raw!.write(bytes)
          return Effect.void
        })
      )
    const following = follow({
      send: (text) =>
        raw === undefined ? Effect.andThen(flow.room, writer.write(text)) : write(WsFrames.one(text)),
      sendFrames: (frames) => {
        if (raw !== undefined) return frames.bytes.length === 0 ? Effect.void : write(frames.bytes)
        const texts = frames.texts()
        return Arr.isReadonlyArrayNonEmpty(texts)
          ? Effect.andThen(flow.room, flow.batch(writer.writeAll(texts)))
          : Effect.void
      },
      batch: flow.batch,
      close
    }).pipe(
      Effect.catchIf(
        (error): error is Stalled => error instanceof Stalled,
        () => close(slowConsumerCode, stalledReason())
      )
    )
    const closedAsEnded = Effect.flatMap(ended, ({ code, reason }) => close(code, reason))
    yield* Effect.raceFirst(following, Deferred.await(gone)).pipe(
      Effect.raceFirst(closedAsEnded),
      Effect.ignore
    )
    return HttpServerResponse.empty()
  })

/** A route's refusals before the upgrade as the API's error answers; anything else is a defect. */
export const answeringRefusals = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.catch(effect, (error) =>
    error instanceof ApiError.Unauthorized ||
    error instanceof ApiError.NotFound ||
    error instanceof ApiError.BadRequest
      ? respond(error)
      : Effect.die(error)
  )
