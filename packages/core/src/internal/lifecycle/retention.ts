/**
 * Retention's writes (`Retention`): expiring stopped builds' logs and deleting stopped builds, a batch per
 * transaction, each build with its event in the same transaction.
 */
import { Effect } from "effect"
import type { Build } from "../../Build.ts"
import * as Event from "../../Event.ts"
import * as Id from "../../Id.ts"
import type { BuildDeletion, LogExpiry } from "../../Storage.ts"
import type { Transaction } from "../../StorageDriver.ts"
import type { StorageError } from "../../StorageError.ts"
import { eventsWritten, type Lifecycle } from "./context.ts"

type Step<A> = Effect.Effect<A, StorageError>

/** One batch: finds the builds, changes them, and writes an event of `type` for each. */
const batch = (
  lifecycle: Lifecycle,
  type: "build.deleted" | "build.logs_expired",
  find: (tx: Transaction) => Step<ReadonlyArray<Build>>,
  change: (tx: Transaction, builds: ReadonlyArray<Build>) => Step<void>
) =>
  lifecycle.driver
    .transaction((tx) =>
      Effect.gen(function* () {
        const builds = yield* find(tx)
        if (builds.length === 0) return builds
        const at = yield* tx.now
        yield* change(tx, builds)
        const nextId = yield* Id.generator("msg")
        yield* tx.insertEvents(builds.map((build) => Event.forRetention(nextId(), type, build, at)))
        return builds
      })
    )
    .pipe(Effect.tap((builds) => (builds.length === 0 ? Effect.void : lifecycle.publish([eventsWritten]))))

export const expireLogs = (lifecycle: Lifecycle) => (request: LogExpiry) =>
  batch(
    lifecycle,
    "build.logs_expired",
    (tx) => tx.logsToExpire(request),
    (tx, builds) =>
      Effect.flatMap(tx.now, (at) =>
        tx.expireLogs(
          builds.map((build) => build.id),
          at
        )
      )
  )

export const deleteBuilds = (lifecycle: Lifecycle) => (request: BuildDeletion) =>
  batch(
    lifecycle,
    "build.deleted",
    (tx) => tx.buildsToDelete(request),
    (tx, builds) => tx.deleteBuilds(builds)
  )
