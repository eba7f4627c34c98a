/**
 * Storage writes a build cannot do without are retried while the storage says a retry can help.
 */
import { Effect, Predicate, Schedule } from "effect"

const schedule = Schedule.exponential("50 millis").pipe(Schedule.upTo({ times: 5 }))

// Asked of the error's shape rather than its class: callers pass any error union a storage write can fail
// with, and only a `StorageError` says whether retrying can help.
const retryable = (error: unknown): boolean =>
  Predicate.isTagged(error, "StorageError") &&
  Predicate.hasProperty(error, "retryable") &&
  error.retryable === true

export const retryTransient = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.retry(effect, { schedule, while: retryable })
