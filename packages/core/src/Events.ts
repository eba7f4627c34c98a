/**
 * Following the event feed (DESIGN.md §11): replay from a cursor, then follow live. Storage keeps the
 * order and never puts an event behind a cursor it has handed out, so a consumer that resumes from the
 * last cursor it saw, after any outage, misses nothing and sees nothing twice.
 */
import { Duration, Effect, Option, Queue, Stream } from "effect"
import type { Access } from "./Access.ts"
import type * as Event from "./Event.ts"
import { Storage } from "./Storage.ts"
import type { StorageError } from "./StorageError.ts"

export interface Follow {
  /** Resume after this cursor; from the start of the feed when absent or null. */
  readonly after?: Event.Cursor | null | undefined
  /** Only these types; every type when absent or null. */
  readonly types?: ReadonlyArray<Event.Type> | null | undefined
  /** Events read per storage call (default 100). */
  readonly pageSize?: number | undefined
  /**
   * How long to wait for a wake-up hint before reading again (default 500 ms). Hints make following
   * prompt; the poll bounds the wait where an event becomes readable without one (on PostgreSQL, once an
   * older transaction still open when it committed has ended).
   */
  readonly pollInterval?: Duration.Input | undefined
}

/** The events the caller's access sees, from `after` on, then live as they are written. Never ends. */
export const stream = (
  access: Access,
  options: Follow = {}
): Stream.Stream<Event.Stored, StorageError, Storage> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const storage = yield* Storage
      const limit = options.pageSize ?? 100
      const types = options.types ?? null
      const poll = Duration.fromInputUnsafe(options.pollInterval ?? "500 millis")
      // Subscribed before the first read, so an event written in between still wakes the reader.
      const wake = yield* Queue.sliding<void>(1)
      yield* Effect.forkScoped(
        Stream.runForEach(yield* storage.changes, (change) =>
          change._tag === "EventsWritten" ? Queue.offer(wake, undefined) : Effect.void
        )
      )
      const idle = Effect.asVoid(Effect.timeoutOption(Queue.take(wake), poll))
      return Stream.paginate(
        { after: options.after ?? null, caughtUp: false },
        Effect.fnUntraced(function* (state) {
          if (state.caughtUp) yield* idle
          const page = yield* storage.readEvents(access, { after: state.after, types, limit })
          const next = { after: page.at(-1)?.cursor ?? state.after, caughtUp: page.length < limit }
          return [page, Option.some(next)] as const
        })
      )
    })
  )
