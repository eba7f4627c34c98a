/**
 * Pages of build logs shared by the followers of one stream route. The followers of a build wake on the
 * same change and read from the same place, so the first read of a page, and its lines rendered as
 * messages, serves every follower that asks for the same page while it is fresh: a hundred followers cost
 * one storage read and one rendering per page, not a hundred.
 *
 * A shared page is fresh for a follower while it reaches as far as the follower knows the log to reach
 * (the `lastSeq` of the hints it has seen) and is younger than `maxAgeMs`; otherwise it is read again and
 * replaces the old one. So a page read before newer lines landed is never taken as the end of the log,
 * and a follower without hints (polling) reads again on its next poll. Reads are made with full access:
 * a follower has been allowed the build before it asks.
 *
 * Pages are kept only while they may be shared: past `maxAgeMs` they are dropped (on the next read, or by a
 * sweep soon after the last one), and past `maxBytes` in all the oldest go first, so followers that leave
 * leave nothing behind and a log of long lines cannot grow the cache.
 */
import { Access, type Id, LogCursor, type LogLine, type Storage } from "@kiln/core"
import { Clock, Deferred, Effect, Exit } from "effect"
import type { LogStreamMessage } from "../Api.ts"

export interface SharedPage {
  readonly page: LogLine.LogPage
  /** Each of the page's lines as the dialect sends it: undefined where it sends nothing. */
  readonly messages: ReadonlyArray<string | undefined>
}

type ReadError = Storage.NotFound | Storage.StorageError

interface Entry {
  readonly readAt: number
  readonly result: Deferred.Deferred<SharedPage, ReadError>
  /** The page's text and messages, once read. */
  bytes: number
}

export interface LogPages {
  /** Lines after `afterSeq`, at most `limit`, reaching at least `knownSeq` when the log does. */
  readonly read: (
    buildId: Id.BuildId,
    afterSeq: number,
    limit: number,
    knownSeq: number
  ) => Effect.Effect<SharedPage, ReadError>
}

export interface LogPagesOptions {
  readonly storage: Pick<Storage.StorageShape, "readLogs">
  readonly render: (message: LogStreamMessage) => string | undefined
  /** How long a page is shared at most. Default 250 ms. */
  readonly maxAgeMs?: number
  /** How much text the kept pages may hold, the oldest dropped first. Default 8 MiB. */
  readonly maxBytes?: number
}

const sizeOf = ({ page, messages }: SharedPage) => {
  let size = 0
  for (const line of page.lines) size += line.text.length
  for (const message of messages) size += message?.length ?? 0
  return size
}

export const make = (options: LogPagesOptions): LogPages => {
  const maxAgeMs = options.maxAgeMs ?? 250
  const maxBytes = options.maxBytes ?? 8 * 1024 * 1024
  // In the order read, so the oldest come first.
  const entries = new Map<string, Entry>()
  let bytes = 0
  let sweeping = false
  const drop = (key: string, entry: Entry) => {
    entries.delete(key)
    bytes -= entry.bytes
  }
  /** Drops what is too old to share, and the oldest while the pages hold too much. */
  const trim = (now: number) => {
    for (const [key, entry] of entries) {
      if (now - entry.readAt <= maxAgeMs && bytes <= maxBytes) return
      drop(key, entry)
    }
  }
  // Once pages are kept, a sweep comes after they expire, so a cache nobody reads any more empties.
  const sweepLater: Effect.Effect<void> = Effect.suspend(() => {
    if (sweeping || entries.size === 0) return Effect.void
    sweeping = true
    return Effect.asVoid(
      Effect.forkDetach(
        Effect.sleep(maxAgeMs).pipe(
          Effect.andThen(Clock.currentTimeMillis),
          Effect.flatMap((now) =>
            Effect.suspend(() => {
              sweeping = false
              trim(now)
              return sweepLater
            })
          )
        )
      )
    )
  })

  const render = (page: LogLine.LogPage): SharedPage => {
    const messages = page.lines.map((line) =>
      options.render({ type: "line", ...line, cursor: LogCursor.encode(line.seq) })
    )
    return { page, messages }
  }

  const readAgain = (key: string, buildId: Id.BuildId, afterSeq: number, limit: number, now: number) =>
    Effect.gen(function* () {
      const result = yield* Deferred.make<SharedPage, ReadError>()
      const entry: Entry = { readAt: now, result, bytes: 0 }
      const old = entries.get(key)
      if (old !== undefined) drop(key, old)
      entries.set(key, entry)
      const read = yield* Effect.exit(
        Effect.map(options.storage.readLogs(Access.all, buildId, afterSeq, limit), render)
      )
      if (entries.get(key) === entry) {
        // A failed read is not shared: the next follower asks storage itself.
        if (Exit.isFailure(read)) drop(key, entry)
        else {
          entry.bytes = sizeOf(read.value)
          bytes += entry.bytes
        }
      }
      trim(now)
      yield* sweepLater
      yield* Deferred.done(result, read)
      return yield* read
    }).pipe(Effect.uninterruptible)

  return {
    read: (buildId, afterSeq, limit, knownSeq) =>
      Effect.gen(function* () {
        const key = `${buildId} ${afterSeq} ${limit}`
        const now = yield* Clock.currentTimeMillis
        const entry = entries.get(key)
        if (entry === undefined || now - entry.readAt > maxAgeMs) {
          return yield* readAgain(key, buildId, afterSeq, limit, now)
        }
        const shared = yield* Deferred.await(entry.result)
        if (shared.page.lastSeq >= knownSeq) return shared
        return yield* readAgain(key, buildId, afterSeq, limit, now)
      })
  }
}
