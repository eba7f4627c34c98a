/**
 * `GET /api/builds/{id}/logs/stream?cursor=`: a build's log over a WebSocket (DESIGN.md §5).
 *
 * Messages are JSON: `{"type":"line", seq, ts, stream, step, text, cursor}` for each line,
 * `{"type":"status", status}` when the status changes, then `{"type":"end", status, cursor}` before a
 * normal close. It subscribes to storage changes first, then reads from the cursor, then reads again on
 * every change (or once a second, as a fallback): lines come from storage in seq order, so a client that
 * resumes from any cursor gets no gap and no duplicate.
 *
 * A follower that does not read gets backpressure: Kiln sends only while the connection holds less than
 * `maxBufferedBytes` the client has not taken, and reads storage only as it sends, so a stalled follower
 * costs that buffer and one page. One that takes nothing for `stallTimeoutMs` is closed with
 * `slowConsumerCode`, its reason naming the cursor to resume from: the close frame follows every line sent.
 *
 * Browsers cannot set headers on a WebSocket: besides `Authorization`, the token may come as the
 * subprotocol `bearer.<token>`, or a short-lived ticket for the build (`logTickets.ts`) as `?ticket=`, which
 * is all a plain `new WebSocket(url)` can send. Refusals (401, 404, 400, and 426 to a plain GET) are
 * answered before the upgrade, in the API's error body.
 */
import { IncomingMessage } from "node:http"
import type { Duplex } from "node:stream"
import { Authenticator, type Build, Change, LogCursor, Storage } from "@kiln/core"
import { Data, Deferred, Effect, identity, Queue, Schema, Stream } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Socket } from "effect/socket"
import { LogStreamMessage, logStreamTokenProtocol } from "../Api.ts"
import * as ApiError from "../ApiError.ts"
import { canonicalId, idOf } from "./ids.ts"
import * as LogTickets from "./logTickets.ts"
import { respond } from "./responses.ts"

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

const pageSize = 1000

/** A plain request (no WebSocket upgrade) is told what the route needs: 426 names the protocol. */
const upgradeRequired = HttpServerResponse.jsonUnsafe(
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
}

/** The close code for a follower that stopped reading: resume from the cursor in the close reason. */
export const slowConsumerCode = 4008

class Stalled extends Data.TaggedError("Stalled") {}

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
  /** Runs `effect` with the connection corked, so a page of messages leaves in one system call, not one each. */
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

const encode = Schema.encodeSync(Schema.fromJsonString(Schema.toCodecJson(LogStreamMessage)))

/** How a surface names a build in the path, and what it sends for each message (nothing, to skip one). */
export interface Dialect {
  /** The path parameter that names the build, as it was sent. */
  readonly buildParam: string
  /** Whether the build is the one the rest of the path names (the deployments dialect names its app too). */
  readonly matches: (build: Build.Build, params: Readonly<Record<string, string | undefined>>) => boolean
  readonly render: (message: LogStreamMessage) => string | undefined
  /** The message of a 404, when the surface documents one; otherwise storage's. */
  readonly notFound?: string
}

/** The canonical stream: JSON messages, the build named by its id. */
const canonical: Dialect = {
  buildParam: "id",
  matches: () => true,
  render: encode
}

export const follow = (
  storage: Storage.StorageShape,
  authenticator: Authenticator.AuthenticatorShape,
  dialect: Dialect,
  limits: Limits
) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    if ((request.headers.upgrade ?? "").toLowerCase() !== "websocket") return upgradeRequired
    const params = yield* HttpRouter.params
    const named = params[dialect.buildParam] ?? ""
    const query = new URL(request.url, "http://kiln").searchParams
    const credential = credentialOf(request.headers)
    const ticket = query.get("ticket")
    const principal = yield* credential !== undefined
      ? authenticator
          .authenticate(credential)
          .pipe(Effect.catchTag("Unauthenticated", () => Effect.fail(ApiError.Unauthorized.instance)))
      : ticket !== null
        ? LogTickets.redeem(storage, ticket, idOf("bld", named) ?? named)
        : Effect.fail(ApiError.Unauthorized.instance)
    const cursor = query.get("cursor") ?? undefined
    let seq = yield* Effect.fromResult(LogCursor.decode(cursor)).pipe(
      Effect.mapError((error) => ApiError.badRequest("invalid_cursor", error.message))
    )
    const notFound = (error: Storage.NotFound) => ApiError.NotFound.of(dialect.notFound ?? error.message)
    // Decoded where storage would answer for a missing build, and answered as it would be.
    const buildId = yield* Effect.mapError(canonicalId("bld", named), notFound)
    let build = yield* storage
      .getBuild(principal.access, buildId)
      .pipe(Effect.catchTag("StorageNotFound", (error) => Effect.fail(notFound(error))))
    if (!dialect.matches(build, params))
      return yield* ApiError.NotFound.of(dialect.notFound ?? "Build not found")

    // Subscribe before the first read, so a line stored in between wakes the loop.
    const wake = yield* Queue.sliding<void>(1)
    const changes = yield* storage.changes
    yield* Effect.forkScoped(
      Stream.runForEach(changes, (change) =>
        Change.isBuildChange(change) && change.buildId === buildId
          ? Queue.offer(wake, undefined)
          : Effect.void
      )
    )

    const flow = flowOf(connectionOf(request), limits)
    const socket = yield* request.upgrade
    const { pull } = yield* socket.reader
    const writer = yield* socket.writer
    const send = (message: LogStreamMessage) => {
      const text = dialect.render(message)
      return text === undefined ? Effect.void : Effect.andThen(flow.room, writer.write(text))
    }
    // The client sends nothing; reading only tells when it has gone.
    const gone = yield* Deferred.make<void>()
    yield* Effect.forkScoped(
      Effect.forever(pull).pipe(Effect.ignore, Effect.andThen(Deferred.succeed(gone, undefined)))
    )

    const follow = Effect.gen(function* () {
      let status = build.status
      yield* send({ type: "status", status })
      while (true) {
        const page = yield* storage.readLogs(principal.access, buildId, seq, pageSize)
        yield* flow.batch(
          Effect.gen(function* () {
            for (const line of page.lines) {
              yield* send({ type: "line", ...line, cursor: LogCursor.encode(line.seq) })
              seq = line.seq
            }
          })
        )
        if (page.lines.length === pageSize) continue
        build = yield* storage.getBuild(principal.access, buildId)
        if (build.status !== status) {
          status = build.status
          yield* send({ type: "status", status })
        }
        if (build.phase === "stopped" && seq >= page.lastSeq) {
          // Lines may have landed between the read and the stop: the loop reads once more first.
          const tail = yield* storage.readLogs(principal.access, buildId, seq, 1)
          if (tail.lines.length > 0) continue
          yield* send({ type: "end", status, cursor: LogCursor.encode(seq) })
          return yield* writer.write(new Socket.CloseEvent(1000, "end of log"))
        }
        yield* Queue.take(wake).pipe(Effect.timeout("1 second"), Effect.ignore)
      }
    })
    const following = follow.pipe(
      Effect.catchTag("Stalled", () =>
        writer.write(
          new Socket.CloseEvent(
            slowConsumerCode,
            `slow consumer: resume from cursor ${LogCursor.encode(seq)}`
          )
        )
      )
    )
    yield* Effect.raceFirst(following, Deferred.await(gone)).pipe(Effect.ignore)
    return HttpServerResponse.empty()
  }).pipe(
    Effect.scoped,
    Effect.catch((error) =>
      error instanceof ApiError.Unauthorized ||
      error instanceof ApiError.NotFound ||
      error instanceof ApiError.BadRequest
        ? respond(error)
        : Effect.die(error)
    )
  )

/** The deployments dialect's stream: each line's text as it is produced, then a normal close. */
const raw: Dialect = {
  buildParam: "build_id",
  matches: (build, params) =>
    params.deployment_id !== undefined && idOf("app", params.deployment_id) === build.entityId,
  render: (message) => (message.type === "line" ? message.text : undefined),
  notFound: "Build not found"
}

/** The canonical stream's route, with its services taken when added (a web handler needs nothing per request). */
export const route = (limits: Limits) =>
  HttpRouter.use((router) =>
    Effect.gen(function* () {
      const handler = follow(yield* Storage.Storage, yield* Authenticator.Authenticator, canonical, limits)
      yield* router.add("GET", "/api/builds/:id/logs/stream", handler)
    })
  )

/** The deployments dialect's stream route. */
export const deploymentsRoute = (limits: Limits) =>
  HttpRouter.use((router) =>
    Effect.gen(function* () {
      const handler = follow(yield* Storage.Storage, yield* Authenticator.Authenticator, raw, limits)
      yield* router.add("GET", "/api/v1/deployments/:deployment_id/builds/:build_id/logs/stream", handler)
    })
  )
