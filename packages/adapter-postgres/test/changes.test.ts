import { expect, it } from "@effect/vitest"
import { Storage } from "@kiln/core"
import { Effect, Queue, Stream } from "effect"
import { describe } from "vitest"
import { channelOf } from "../src/internal/listener.ts"
import { freshSchema, queue, seed, sql, storageOn } from "./fixtures.ts"

/** Polls `check` until it holds, for at most ten seconds. */
const eventually = (check: Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    while (!(yield* check)) yield* Effect.sleep("50 millis")
  }).pipe(Effect.timeout("10 seconds"))

describe("postgres change notifications across storages", () => {
  it.live(
    "hears another storage's writes, and hears them again after its listening connection is killed",
    () =>
      Effect.gen(function* () {
        const schema = yield* freshSchema
        const listener = yield* storageOn(schema)
        const writer = yield* storageOn(schema)
        const heard = yield* Queue.unbounded<Storage.Change>()
        yield* Effect.forkScoped(
          Stream.runForEach(yield* listener.changes, (change) => Queue.offer(heard, change))
        )
        /** The next change heard about this build. */
        const next = (buildId: string) =>
          Effect.gen(function* () {
            while (true) {
              const change = yield* Queue.take(heard)
              if (change.buildId === buildId) return change
            }
          }).pipe(Effect.timeout("10 seconds"))

        const { versions } = yield* seed(writer)
        const [queued] = yield* queue(writer, versions[0]!)
        expect(yield* next(queued!.id)).toEqual(Storage.buildChanged(queued!))
        // The claim publishes from SQL; what arrives is what core would have published.
        const [claimed] = yield* writer.claimNext({ owner: "engine", leaseMs: 60_000, max: 1 })
        expect(yield* next(claimed!.id)).toEqual(Storage.buildChanged(claimed!))

        const application = `kiln listener ${channelOf(schema)}`
        const killed = yield* sql<{ pid: number }>(
          "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
          [application]
        )
        expect(killed.length).toBe(2)
        yield* eventually(
          Effect.map(
            sql(
              `SELECT pid FROM pg_stat_activity
             WHERE application_name = $1 AND query LIKE 'LISTEN %' AND NOT pid = ANY($2::int[])`,
              [application, killed.map((row) => row.pid)]
            ),
            (listening) => listening.length === 2
          )
        )
        const [later] = yield* queue(writer, versions[0]!)
        expect(yield* next(later!.id)).toEqual(Storage.buildChanged(later!))
      }).pipe(Effect.scoped)
  )
})
