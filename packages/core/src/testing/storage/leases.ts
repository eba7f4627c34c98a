import { describe, expect } from "@effect/vitest"
import { Clock, DateTime, Effect } from "effect"
import * as Access from "../../Access.ts"
import { assertValidBuild, claimOne, type MakeStorage, queue, seed, test } from "./fixtures.ts"

const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))

/** Leases: heartbeats extend them; the reaper stops builds whose owner stopped renewing. Real time. */
export const leases = (name: string, make: MakeStorage) =>
  describe(`${name} › storage: leases and reaping`, () => {
    const it = test(make)

    it("extends a lease on heartbeat", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        yield* queue(version)
        const { build, fence } = yield* claimOne("engine", 1_000)
        const renewed = yield* storage.heartbeat(build.id, fence, 60_000)
        expect(DateTime.toEpochMillis(renewed.leaseExpiresAt!)).toBeGreaterThan(
          DateTime.toEpochMillis(build.leaseExpiresAt!) + 50_000
        )
        expect((yield* storage.getBuild(Access.all, build.id)).leaseExpiresAt).toEqual(renewed.leaseExpiresAt)
      }))

    it("reaps only expired leases: lost, or cancelled when a cancel was pending", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        yield* queue(version, 3)
        const lost = yield* claimOne("engine-a", 150)
        const cancelled = yield* claimOne("engine-a", 150)
        const alive = yield* claimOne("engine-b", 60_000)
        yield* storage.transition(cancelled.build.id, { _tag: "Started", at: yield* now, ...cancelled.fence })
        yield* storage.requestCancel(Access.all, cancelled.build.id, "user")
        expect(yield* storage.reapExpired()).toEqual([])
        yield* Effect.sleep("400 millis")
        const reaped = yield* storage.reapExpired()
        expect(reaped.map((b) => b.id).toSorted()).toEqual([lost.build.id, cancelled.build.id].toSorted())
        reaped.forEach(assertValidBuild)
        const lostBuild = yield* storage.getBuild(Access.all, lost.build.id)
        expect(lostBuild).toMatchObject({ phase: "stopped", outcome: "lost", status: "failed" })
        expect(lostBuild.error).toContain("engine-a")
        expect(yield* storage.getBuild(Access.all, cancelled.build.id)).toMatchObject({
          outcome: "cancelled",
          cancelReason: "user"
        })
        expect((yield* storage.getBuild(Access.all, alive.build.id)).phase).toBe("initializing")
        expect(yield* storage.reapExpired()).toEqual([])
      }))

    it("fences out the owner of a reaped build: heartbeat, steps, logs and the final write all fail", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        yield* queue(version)
        const { build, fence } = yield* claimOne("engine", 100)
        yield* Effect.sleep("300 millis")
        yield* storage.reapExpired()
        const at = yield* now
        const errors = [
          yield* Effect.flip(storage.heartbeat(build.id, fence, 60_000)),
          yield* Effect.flip(
            storage.recordStep(build.id, fence, {
              index: 0,
              name: "build",
              status: "running",
              startedAt: at,
              completedAt: null,
              exitCode: null,
              error: null
            })
          ),
          yield* Effect.flip(
            storage.appendLogs(build.id, fence, [
              { seq: 1, ts: at, stream: "stdout", step: null, text: "late" }
            ])
          ),
          yield* Effect.flip(
            storage.transition(build.id, {
              _tag: "Succeeded",
              at,
              ...fence,
              imageTag: "late",
              imageDigest: null
            })
          )
        ]
        expect(errors.map((e) => e._tag)).toEqual(["LeaseLost", "LeaseLost", "LeaseLost", "LeaseLost"])
        const stored = yield* storage.getBuild(Access.all, build.id)
        expect(stored).toMatchObject({ outcome: "lost", imageTag: null, steps: [] })
        expect((yield* storage.readLogs(Access.all, build.id, 0, 10)).lines).toEqual([])
      }))

    it("keeps a heartbeating build alive past its first lease", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        yield* queue(version)
        const { build, fence } = yield* claimOne("engine", 200)
        for (let i = 0; i < 4; i++) {
          yield* Effect.sleep("100 millis")
          yield* storage.heartbeat(build.id, fence, 200)
          expect(yield* storage.reapExpired()).toEqual([])
        }
        expect((yield* storage.getBuild(Access.all, build.id)).phase).toBe("initializing")
      }))
  })
