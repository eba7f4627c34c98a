/**
 * `GET /api/builds/{id}/logs/stream?cursor=`: a build's log over a WebSocket (DESIGN.md §5).
 *
 * Messages are JSON: `{"type":"line", seq, ts, stream, step, text, cursor}` for each line,
 * `{"type":"status", status}` when the status changes, then `{"type":"end", status, cursor}` before a
 * normal close. It subscribes to storage changes first, then reads from the cursor, then reads again on
 * every change (or once a second, as a fallback): lines come from storage in seq order, so a client that
 * resumes from any cursor gets no gap and no duplicate.
 *
 * A follower that does not read gets backpressure, and one that stalls is closed with 4008 and the cursor
 * to resume from; one whose token (or its ticket's) is revoked or expires while it follows is closed with
 * 4403 or 4401 (`follower.ts`). A build whose log retention expired is closed at once with 4410, reason
 * `logs_expired`, rather than ended as a log with no lines.
 *
 * Browsers cannot set headers on a WebSocket: besides `Authorization`, the token may come as the
 * subprotocol `bearer.<token>`, or a short-lived ticket for the build (`logTickets.ts`) as `?ticket=`, which
 * is all a plain `new WebSocket(url)` can send. Refusals (401, 404, 400, and 426 to a plain GET) are
 * answered before the upgrade, in the API's error body.
 */
import { Authenticator, type Build, type BuildState, Change, LogCursor, Storage } from "@kiln/core"
import { Clock, Effect, Queue, Schema, Stream } from "effect"
import { HttpRouter, HttpServerRequest } from "effect/http"
import { LogStreamMessage, logsExpiredCode } from "../Api.ts"
import * as ApiError from "../ApiError.ts"
import {
  answeringRefusals,
  type Connection,
  credentialOf,
  isUpgrade,
  type Limits,
  serve,
  sessionPrincipal,
  tokenEnded,
  upgradeRequired
} from "./follower.ts"
import { canonicalId, idOf } from "./ids.ts"
import * as LogPages from "./logPages.ts"
import * as LogTickets from "./logTickets.ts"
import * as WsFrames from "./wsFrames.ts"

export type { Limits } from "./follower.ts"

/**
 * About how much of a page is sent at once, each part once the connection has room for it. A page of short
 * lines goes whole (parts of 64 KiB cut 100 followers' throughput from 9,000 lines/s to 3,700); a page of
 * long lines in parts, so a follower that stalls has its bound and a part queued rather than a page (the
 * part is a slice of the page's frames, which it keeps in memory meanwhile).
 */
const sendBytes = 256 * 1024

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
) => {
  // One per route: the followers of a build share its pages (`logPages.ts`).
  const pages = LogPages.make({ storage, render: dialect.render })
  return Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (!isUpgrade(request)) return upgradeRequired
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
        : sessionPrincipal(storage, request)
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

    // Subscribe before the first read, so a line stored in between wakes the loop; the hints also say how
    // far the log reaches, so a shared page read before the latest lines is not taken as its end.
    const wake = yield* Queue.sliding<void>(1)
    const changes = yield* storage.changes
    let knownSeq = 0
    // The build is read again only when a hint says it changed, or once a second in case a hint was missed:
    // a hundred followers of a busy log would otherwise read it a hundred times per page.
    let changed = true
    let buildReadAt = 0
    yield* Effect.forkScoped(
      Stream.runForEach(changes, (change) => {
        if (!Change.isBuildChange(change) || change.buildId !== buildId) return Effect.void
        if (change._tag === "LogsAppended") knownSeq = Math.max(knownSeq, change.lastSeq)
        else changed = true
        return Queue.offer(wake, undefined)
      })
    )

    const following = (connection: Connection) =>
      Effect.gen(function* () {
        const send = (message: LogStreamMessage) => {
          const text = dialect.render(message)
          return text === undefined ? Effect.void : connection.send(text)
        }
        const reader = yield* pages.reader(buildId, seq)
        // Sent once the first page shows the log is there: an expired log closes before any message.
        let status: BuildState.Status | undefined
        while (true) {
          const page = yield* reader.read(seq, knownSeq)
          const { seqs, frames } = page
          if (page.expiredAt !== null) return yield* connection.close(logsExpiredCode, "logs_expired")
          if (status === undefined) {
            status = build.status
            yield* send({ type: "status", status })
          }
          // The page may begin before the follower's cursor; from there on, in parts, each once the
          // connection has room: a slow follower holds at most its bound and a part, and the cursor it is
          // told to resume from is the last line sent.
          let from = 0
          while (from < seqs.length && seqs[from]! <= seq) from++
          for (let to = from; to < seqs.length; to++) {
            const partStart = from === 0 ? 0 : frames.ends[from - 1]!
            if (frames.ends[to]! - partStart >= sendBytes || to === seqs.length - 1) {
              yield* connection.sendFrames(WsFrames.slice(frames, from, to + 1))
              seq = seqs[to]!
              reader.reached(seq)
              from = to + 1
            }
          }
          if (seqs.length === pages.pageSize) continue
          const now = yield* Clock.currentTimeMillis
          if (changed || now - buildReadAt >= 1000) {
            changed = false
            buildReadAt = now
            build = yield* storage.getBuild(principal.access, buildId)
          }
          if (build.status !== status) {
            status = build.status
            yield* send({ type: "status", status })
          }
          if (build.phase === "stopped" && seq >= page.lastSeq) {
            // Lines may have landed between the read and the stop: the loop reads once more first.
            const tail = yield* storage.readLogs(principal.access, buildId, seq, 1)
            if (tail.lines.length > 0) {
              // The page shared with this follower was older than the log: the next one must not be.
              knownSeq = Math.max(knownSeq, tail.lastSeq)
              continue
            }
            yield* send({ type: "end", status, cursor: LogCursor.encode(seq) })
            return yield* connection.close(1000, "end of log")
          }
          yield* Queue.take(wake).pipe(Effect.timeout("1 second"), Effect.ignore)
        }
      })
    return yield* serve(
      request,
      limits,
      following,
      () => `slow consumer: resume from cursor ${LogCursor.encode(seq)}`,
      tokenEnded({ storage, authenticator, principal, credential, limits })
    )
  }).pipe(Effect.scoped, answeringRefusals)
}

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
