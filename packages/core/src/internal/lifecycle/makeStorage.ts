/** A Storage from a driver: core's lifecycle operations over the driver's transactions and queries. */
import { Effect, PubSub, Stream } from "effect"
import type { Change } from "../../Change.ts"
import * as LogBudget from "../../LogBudget.ts"
import type { StorageOptions, StorageShape } from "../../Storage.ts"
import type { Driver } from "../../StorageDriver.ts"
import * as Tracing from "../../Tracing.ts"
import { spans } from "../spans.ts"
import {
  appendAndTransition,
  heartbeat,
  makeCreateBuild,
  recordStep,
  requestCancel,
  transition
} from "./builds.ts"
import { claimNext } from "./claims.ts"
import { eventsWritten, type Lifecycle } from "./context.ts"
import { makeKnown } from "./known.ts"
import { appendLogs, readLogs } from "./logs.ts"
import { reapExpired } from "./reaper.ts"
import { deleteBuilds, expireLogs } from "./retention.ts"

export const makeStorage = <ListenError>(driver: Driver<ListenError>, options: StorageOptions = {}) =>
  Effect.gen(function* () {
    const changes = yield* PubSub.unbounded<Change>()
    if (driver.listen !== undefined) yield* driver.listen((change) => PubSub.publishUnsafe(changes, change))
    const lifecycle: Lifecycle = {
      driver,
      budget: options.logBudget ?? LogBudget.defaultBudget,
      // Published together: one wake-up for a subscriber, not one per change.
      publish: (published) =>
        published.length === 0 ? Effect.void : Effect.asVoid(PubSub.publishAll(changes, published)),
      known: makeKnown(driver.fastPaths?.writeKnown !== undefined)
    }
    const announcing =
      <Args extends ReadonlyArray<unknown>, A, E>(operation: (...args: Args) => Effect.Effect<A, E>) =>
      (...args: Args) =>
        Effect.tap(operation(...args), () => lifecycle.publish([eventsWritten]))
    const { queries } = driver
    const storage: StorageShape = {
      ...queries,
      // Queries that write events or deliveries wake feed readers and webhook senders too.
      createAppVersion: announcing(queries.createAppVersion),
      resolveAppVersion: announcing(queries.resolveAppVersion),
      // Only a fan-out that made deliveries: an empty one announcing would wake the sender that called it,
      // whose next round would fan out nothing and announce again, round after round.
      fanOutEvents: (max) =>
        Effect.tap(queries.fanOutEvents(max), (moved) =>
          moved > 0 ? lifecycle.publish([eventsWritten]) : Effect.void
        ),
      redeliver: announcing(queries.redeliver),
      enqueuePing: announcing(queries.enqueuePing),
      updateWebhook: announcing(queries.updateWebhook),
      createBuild: yield* makeCreateBuild(lifecycle),
      claimNext: claimNext(lifecycle),
      heartbeat: heartbeat(lifecycle),
      transition: transition(lifecycle),
      requestCancel: requestCancel(lifecycle),
      reapExpired: reapExpired(lifecycle),
      recordStep: recordStep(lifecycle),
      appendLogs: appendLogs(lifecycle),
      appendAndTransition: appendAndTransition(lifecycle),
      readLogs: readLogs(lifecycle),
      expireLogs: expireLogs(lifecycle),
      deleteBuilds: deleteBuilds(lifecycle),
      changes: Effect.map(PubSub.subscribe(changes), Stream.fromSubscription)
    }
    // Wrapped only where a tracer would export the spans: otherwise every call stays as it is.
    return (yield* Tracing.active) ? spans("kiln.storage", storage) : storage
  })
