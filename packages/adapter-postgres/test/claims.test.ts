import { expect, it } from "@effect/vitest"
import { type Build, BuildState } from "@kiln/core"
import type { Claim } from "@kiln/core/adapter"
import { DateTime, Effect, Result } from "effect"
import { TestClock } from "effect/testing"
import { describe } from "vitest"
import { freshSchema, queue, seed, storageOn } from "./fixtures.ts"

const activeBy = (builds: ReadonlyArray<Build.Build>, key: (build: Build.Build) => string) => {
  const counts = new Map<string, number>()
  for (const build of builds) counts.set(key(build), (counts.get(key(build)) ?? 0) + 1)
  return [...counts.values()]
}

describe("postgres claims", () => {
  it.live("holds per-app and per-workspace caps while two storages claim together", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      const storages = [yield* storageOn(schema), yield* storageOn(schema)]
      for (const name of ["a", "b"]) {
        const { versions } = yield* seed(storages[0]!, name, ["web", "api"])
        for (const version of versions) yield* queue(storages[0]!, version, 10)
      }
      /** Twelve claimers, six on each storage, claiming until the caps stop them all. */
      const claimAll = (limits: Claim.Limits) =>
        Effect.all(
          Array.from({ length: 12 }, (_, n) =>
            Effect.gen(function* () {
              const mine: Array<Build.Build> = []
              while (true) {
                const batch = yield* storages[n % 2]!.claimNext({
                  owner: `engine-${n}`,
                  leaseMs: 60_000,
                  max: 2,
                  limits
                })
                if (batch.length === 0) return mine
                mine.push(...batch)
              }
            })
          ),
          { concurrency: "unbounded" }
        ).pipe(Effect.map((claims) => claims.flat()))

      const perApp = yield* claimAll({ perApp: 1 })
      expect(perApp.length).toBe(4)
      expect(activeBy(perApp, (build) => build.entityId)).toEqual([1, 1, 1, 1])
      const perWorkspace = yield* claimAll({ perWorkspace: 3 })
      expect(activeBy([...perApp, ...perWorkspace], (build) => build.workspaceId)).toEqual([3, 3])
    }).pipe(Effect.scoped)
  )

  // The process clock here is TestClock's, at 1970: leases still come from the database's clock.
  it.effect("takes, renews and reaps leases on the database clock, as BuildState.transition would", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      const storage = yield* storageOn(schema)
      const { versions } = yield* seed(storage)
      const [queued] = yield* queue(storage, versions[0]!)
      const wall = Date.now()
      const [claimed] = yield* storage.claimNext({ owner: "engine", leaseMs: 30_000, max: 1 })
      const at = claimed!.startedAt!
      expect(Math.abs(DateTime.toEpochMillis(at) - wall)).toBeLessThan(5_000)
      const expected = BuildState.transition(queued!, {
        _tag: "Claim",
        at,
        owner: "engine",
        attempt: 1,
        leaseExpiresAt: DateTime.add(at, { milliseconds: 30_000 })
      })
      expect(claimed).toEqual(Result.getOrThrow(expected))

      // Far ahead on the process clock, the lease has not expired on the database's.
      yield* TestClock.adjust("1 day")
      expect(yield* storage.reapExpired()).toEqual([])
      const fence = { owner: "engine", attempt: 1 }
      const renewed = yield* storage.heartbeat(claimed!.id, fence, 1)
      expect(DateTime.toEpochMillis(renewed.leaseExpiresAt!)).toBeLessThan(wall + 5_000)
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
      const [reaped] = yield* storage.reapExpired()
      expect(reaped).toMatchObject({ id: claimed!.id, phase: "stopped", outcome: "lost" })
      expect(DateTime.toEpochMillis(reaped!.completedAt!)).toBeLessThan(wall + 5_000)
      expect((yield* Effect.flip(storage.heartbeat(claimed!.id, fence, 1_000)))._tag).toBe("LeaseLost")
    }).pipe(Effect.scoped)
  )
})
