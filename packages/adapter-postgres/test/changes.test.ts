import { expect, it } from "@effect/vitest"
import { Change, Storage } from "@kiln/core"
import { DateTime, Effect, Queue, Stream } from "effect"
import pg from "pg"
import { describe } from "vitest"
import { channelOf } from "../src/internal/listener.ts"
import * as PgTesting from "../src/testing.ts"
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
              if (Change.isBuildChange(change) && change.buildId === buildId) return change
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

  it.live("announces a batched statement's changes many to a notification, each under the size limit", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      const listener = yield* storageOn(schema)
      const writer = yield* storageOn(schema)
      const payloads: Array<string> = []
      yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const client = new pg.Client({ connectionString: PgTesting.databaseUrl() })
          await client.connect()
          client.on("notification", (message) => payloads.push(message.payload ?? ""))
          await client.query(`LISTEN ${pg.escapeIdentifier(channelOf(schema))}`)
          return client
        }),
        (client) => Effect.promise(() => client.end())
      )
      const heard = yield* Queue.unbounded<Storage.Change>()
      yield* Effect.forkScoped(
        Stream.runForEach(yield* listener.changes, (change) => Queue.offer(heard, change))
      )
      const { versions } = yield* seed(writer)
      const count = 120
      yield* queue(writer, versions[0]!, count)
      const claimed = yield* writer.claimNext({ owner: "engine", leaseMs: 60_000, max: count })
      yield* Effect.sleep("200 millis")
      payloads.length = 0
      yield* Queue.clear(heard)
      const at = DateTime.makeUnsafe(1_700_000_000_000)
      // Every build's first line and Started at once: they queue while the first statement is in flight.
      const written = yield* Effect.forEach(
        claimed,
        (build) => {
          const fence = { owner: build.owner!, attempt: build.attempt }
          const line = { seq: 1, ts: at, stream: "stdout" as const, step: null, text: `build ${build.id}` }
          return writer.appendAndTransition(build.id, fence, [line], [{ _tag: "Started", at, ...fence }])
        },
        { concurrency: "unbounded" }
      )
      expect(written.every((build) => build.phase === "running")).toBe(true)
      const changes: Array<Change.BuildChange> = []
      while (changes.length < 2 * count) {
        const change = yield* Queue.take(heard).pipe(Effect.timeout("10 seconds"))
        if (Change.isBuildChange(change)) changes.push(change)
      }
      expect(new Set(changes.map((change) => `${change._tag} ${change.buildId}`)).size).toBe(2 * count)
      expect(
        changes.filter((change) => change._tag === "BuildChanged").every((c) => c.phase === "running")
      ).toBe(true)
      // One notification per write would be 120; batched statements send a few, none over 8,000 bytes.
      expect(payloads.length).toBeLessThan(count / 4)
      expect(Math.max(...payloads.map((payload) => Buffer.byteLength(payload)))).toBeLessThan(8000)
    }).pipe(Effect.scoped)
  )
})
