/**
 * What every lifecycle operation shares: the driver, the log budget, the publisher of change hints, the
 * clock, and what this process knows of the builds it drives.
 */
import { Clock, DateTime, Effect } from "effect"
import type { Build } from "../../Build.ts"
import type { Change } from "../../Change.ts"
import * as Event from "../../Event.ts"
import * as Id from "../../Id.ts"
import type { Budget } from "../../LogBudget.ts"
import type { Driver, Transaction } from "../../StorageDriver.ts"
import { StorageError } from "../../StorageError.ts"
import type { Known } from "./known.ts"

export interface Lifecycle {
  readonly driver: Driver<unknown>
  readonly budget: Budget
  /** Publishes hints in this process, after the write they describe has committed. */
  readonly publish: (changes: ReadonlyArray<Change>) => Effect.Effect<void>
  readonly known: Known
}

/** This process's clock, for events whose time the caller does not give. */
export const now: Effect.Effect<DateTime.Utc> = Effect.map(Clock.currentTimeMillis, (ms) =>
  DateTime.makeUnsafe(ms)
)

/** The events a build's write from `before` (undefined: created) to `after` announces. */
export const buildEvents = (before: Build | undefined, after: Build) =>
  Effect.map(Id.generator("msg"), (nextId) => Event.forBuild(before, after, nextId))

/** Stores events in the transaction, skipping the call when there are none. */
export const insertEvents = (tx: Transaction, events: ReadonlyArray<Event.Event>) =>
  events.length === 0 ? Effect.void : tx.insertEvents(events)

/**
 * Writes a state change computed from `before`, as read under the transaction's lock, with the events it
 * announces. A miss means the database broke that promise: it fails as Busy (rolling back) and a retry
 * recomputes from a fresh read.
 */
export const writeState = (lifecycle: Lifecycle, tx: Transaction, before: Build, after: Build) =>
  Effect.flatMap(tx.writeBuild(before, after), (written) =>
    written
      ? Effect.flatMap(buildEvents(before, after), (events) => Effect.as(insertEvents(tx, events), after))
      : Effect.fail(
          new StorageError({
            reason: "Busy",
            message: `${lifecycle.driver.name}: build ${before.id} changed while it was being written`
          })
        )
  )

/** The hint that events were written: feed readers and webhook senders look again. */
export const eventsWritten: Change = { _tag: "EventsWritten" }
