/**
 * Pages of build logs shared by the followers of one stream route. Every follower reads a build's log in
 * the same pages — page `n` holds the lines after `n × pageSize`, up to `pageSize` of them — so the first
 * read of a page, with its lines rendered as messages and laid out as WebSocket frames, serves every
 * follower of the build: a hundred followers cost one storage read and one rendering per page, not a
 * hundred, wherever each of them started.
 *
 * A full page does not change (but for lines a log budget trims from the log's start, which a follower may
 * then still be sent), so it is shared for as long as it is kept, except with a follower that has just
 * come: its first page is one younger than `maxAgeMs`, so a log that retention expired meanwhile is seen
 * as expired (closed with 4410) rather than sent from pages kept for others. The last page of a log still
 * grows: it is fresh for a follower while it reaches as far as the follower knows the log to reach (the
 * `lastSeq` of the hints it has seen) and is younger than `maxAgeMs`; otherwise it is read again and
 * replaces the old one. So a page read before newer lines landed is never taken as the end of the log,
 * and a follower without hints (polling) reads again on its next poll. Reads are made with full access: a
 * follower has been allowed the build before it asks.
 *
 * Each follower says how far it has got, so a full page is kept while a follower of its build has yet to
 * read it (followers spread out: the first ones read a page long before the last ones reach it), and
 * dropped once none will and it is older than `maxAgeMs`. Past `maxBytes` in all, the pages the fewest followers still
 * need go first: the followers far behind the rest read for themselves, and a log of long lines or
 * followers that stop reading cannot grow the cache past its bound.
 */
import { Access, type Id, LogCursor, type LogLine, type Storage } from "@kiln/core"
import { Clock, Deferred, Effect, Exit, type Scope } from "effect"
import type { LogStreamMessage } from "../Api.ts"
import * as WsFrames from "./wsFrames.ts"

/** A page of a log as its followers send it: its lines' seqs and their messages, framed; not the lines. */
export interface SharedPage extends Omit<LogLine.LogPage, "lines"> {
  readonly seqs: ReadonlyArray<number>
  /** Each line's message as the dialect sends it (nothing, for some). */
  readonly frames: WsFrames.Frames
}

type ReadError = Storage.NotFound | Storage.StorageError

interface Entry {
  readonly buildId: Id.BuildId
  /** The page holds lines after this seq. */
  readonly start: number
  readonly readAt: number
  readonly result: Deferred.Deferred<SharedPage, ReadError>
  /** Whether the page holds `pageSize` lines, once read: then it cannot change. */
  full: boolean
  /** The page's size in memory, once read. */
  bytes: number
}

/** One follower of a build, for as long as its scope is open. */
export interface Reader {
  /**
   * The page that holds the lines after `afterSeq` (and may begin before it), reaching at least `knownSeq`
   * when the log does.
   */
  readonly read: (afterSeq: number, knownSeq: number) => Effect.Effect<SharedPage, ReadError>
  /** The follower has sent every line up to `seq`: pages before it are not kept for it. */
  readonly reached: (seq: number) => void
}

export interface LogPages {
  /** The lines each page holds at most. */
  readonly pageSize: number
  /** A follower of the build, starting after `seq`, until the scope closes. */
  readonly reader: (buildId: Id.BuildId, seq: number) => Effect.Effect<Reader, never, Scope.Scope>
}

export interface LogPagesOptions {
  readonly storage: Pick<Storage.StorageShape, "readLogs">
  readonly render: (message: LogStreamMessage) => string | undefined
  /** How many lines a page holds. Default 1,000. */
  readonly pageSize?: number
  /** How long the last page of a log, or a page no follower needs, is kept at most. Default 250 ms. */
  readonly maxAgeMs?: number
  /** How many bytes the kept pages may hold. Default 16 MiB. */
  readonly maxBytes?: number
}

const sizeOf = ({ seqs, frames }: SharedPage) => frames.bytes.length + 16 * seqs.length

export const make = (options: LogPagesOptions): LogPages => {
  const pageSize = options.pageSize ?? 1000
  const maxAgeMs = options.maxAgeMs ?? 250
  const maxBytes = options.maxBytes ?? 16 * 1024 * 1024
  const entries = new Map<string, Entry>()
  // Where each follower of a build has got to: the last seq it sent.
  const positions = new Map<Id.BuildId, Map<symbol, number>>()
  let bytes = 0
  let sweeping = false
  const drop = (key: string, entry: Entry) => {
    entries.delete(key)
    bytes -= entry.bytes
  }
  /** How many followers of the page's build will read it: those not past its start (one inside it has it). */
  const needers = (entry: Entry) => {
    let count = 0
    for (const seq of positions.get(entry.buildId)?.values() ?? []) {
      if (seq <= entry.start) count++
    }
    return count
  }
  /** Drops the pages no longer shared, then those the fewest followers need while the pages hold too much. */
  const trim = (now: number) => {
    for (const [key, entry] of entries) {
      if (now - entry.readAt > maxAgeMs && (!entry.full || needers(entry) === 0)) drop(key, entry)
    }
    while (bytes > maxBytes) {
      let least: [string, Entry, number] | undefined
      for (const [key, entry] of entries) {
        if (entry.bytes === 0) continue
        const count = needers(entry)
        if (least === undefined || count < least[2] || (count === least[2] && entry.start < least[1].start)) {
          least = [key, entry, count]
        }
      }
      if (least === undefined) return
      drop(least[0], least[1])
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

  const render = ({ lines, ...page }: LogLine.LogPage): SharedPage => ({
    ...page,
    seqs: lines.map((line) => line.seq),
    frames: WsFrames.make(
      lines.map((line) => options.render({ type: "line", ...line, cursor: LogCursor.encode(line.seq) }))
    )
  })

  const readAgain = (key: string, buildId: Id.BuildId, start: number, now: number) =>
    Effect.gen(function* () {
      const result = yield* Deferred.make<SharedPage, ReadError>()
      const entry: Entry = { buildId, start, readAt: now, result, full: false, bytes: 0 }
      const old = entries.get(key)
      if (old !== undefined) drop(key, old)
      entries.set(key, entry)
      const read = yield* Effect.exit(
        Effect.map(options.storage.readLogs(Access.all, buildId, start, pageSize), render)
      )
      if (entries.get(key) === entry) {
        // A failed read is not shared: the next follower asks storage itself.
        if (Exit.isFailure(read)) drop(key, entry)
        else {
          entry.full = read.value.seqs.length === pageSize
          entry.bytes = sizeOf(read.value)
          bytes += entry.bytes
        }
      }
      trim(now)
      yield* sweepLater
      yield* Deferred.done(result, read)
      return yield* read
    }).pipe(Effect.uninterruptible)

  /** `settled`: whether a full page may be older than `maxAgeMs` (not for a follower's first read). */
  const read = (buildId: Id.BuildId, afterSeq: number, knownSeq: number, settled: boolean) =>
    Effect.gen(function* () {
      const start = afterSeq - (afterSeq % pageSize)
      const key = `${buildId} ${start}`
      const now = yield* Clock.currentTimeMillis
      const entry = entries.get(key)
      const lasting = entry?.full === true && settled
      if (entry === undefined || (!lasting && now - entry.readAt > maxAgeMs)) {
        return yield* readAgain(key, buildId, start, now)
      }
      const shared = yield* Deferred.await(entry.result)
      if (lasting || shared.lastSeq >= knownSeq) return shared
      return yield* readAgain(key, buildId, start, now)
    })

  return {
    pageSize,
    reader: (buildId, seq) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const self = Symbol()
          const followers = positions.get(buildId) ?? new Map<symbol, number>()
          positions.set(buildId, followers.set(self, seq))
          return { self, followers }
        }),
        ({ self, followers }) =>
          Effect.sync(() => {
            followers.delete(self)
            if (followers.size === 0) positions.delete(buildId)
          })
      ).pipe(
        Effect.map(({ self, followers }): Reader => {
          let first = true
          return {
            read: (afterSeq, knownSeq) =>
              Effect.suspend(() => {
                const settled = !first
                first = false
                return read(buildId, afterSeq, knownSeq, settled)
              }),
            reached: (reachedSeq) => {
              followers.set(self, reachedSeq)
            }
          }
        })
      )
  }
}
