import { describe, expect } from "@effect/vitest"
import { Clock, DateTime, Effect } from "effect"
import * as Access from "../../Access.ts"
import { byteLength, type LogLine } from "../../LogLine.ts"
import { assertValidBuild, claimOne, type MakeStorage, queue, seed, test } from "./fixtures.ts"

const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))

const stdout = (seq: number, text: string, ts: DateTime.Utc): LogLine => ({
  seq,
  ts,
  stream: "stdout",
  step: null,
  text
})

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

    it("ends a reaped build's log with a system line that says what became of it and why", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        yield* queue(version, 2)
        const lost = yield* claimOne("engine-a", 150)
        const cancelled = yield* claimOne("engine-a", 150)
        const at = yield* now
        yield* storage.appendLogs(lost.build.id, lost.fence, [stdout(1, "one", at), stdout(2, "two", at)])
        yield* storage.requestCancel(Access.all, cancelled.build.id, "user")
        yield* Effect.sleep("400 millis")
        expect(yield* storage.reapExpired()).toHaveLength(2)
        const expired = (build: typeof lost.build) => DateTime.formatIso(build.leaseExpiresAt!)
        const lostLog = (yield* storage.readLogs(Access.all, lost.build.id, 0, 10)).lines
        expect(lostLog.map((line) => line.text)).toEqual([
          "one",
          "two",
          `[kiln] lost: its process (owner engine-a) stopped heartbeating; its lease expired at ${expired(lost.build)}`
        ])
        const stopped = yield* storage.getBuild(Access.all, lost.build.id)
        expect(lostLog[2]).toEqual({
          seq: 3,
          ts: stopped.completedAt,
          stream: "system",
          step: null,
          text: lostLog[2]!.text
        })
        expect((yield* storage.readLogs(Access.all, cancelled.build.id, 0, 10)).lines).toMatchObject([
          {
            seq: 1,
            stream: "system",
            text: `[kiln] cancelled: user (its process (owner engine-a) stopped heartbeating; its lease expired at ${expired(cancelled.build)})`
          }
        ])
        // Reaping again finds nothing, and writes nothing.
        expect(yield* storage.reapExpired()).toEqual([])
        expect((yield* storage.readLogs(Access.all, lost.build.id, 0, 10)).lines).toHaveLength(3)
      }))

    it("writes the line once when reapers race", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        yield* queue(version)
        const { build } = yield* claimOne("engine", 100)
        yield* Effect.sleep("300 millis")
        const answers = yield* Effect.all(
          [storage.reapExpired(), storage.reapExpired(), storage.reapExpired()],
          {
            concurrency: "unbounded"
          }
        )
        expect(answers.flat().map((b) => b.id)).toEqual([build.id])
        const log = (yield* storage.readLogs(Access.all, build.id, 0, 10)).lines
        expect(log).toMatchObject([{ seq: 1, stream: "system" }])
      }))

    it(
      "keeps the line within the log budget, like every append",
      () =>
        Effect.gen(function* () {
          const { storage, version } = yield* seed()
          yield* queue(version)
          const { build, fence } = yield* claimOne("engine", 150)
          const at = yield* now
          const full = Array.from({ length: 20 }, (_, i) => stdout(i + 1, "x".repeat(20), at))
          yield* storage.appendLogs(build.id, fence, full)
          yield* Effect.sleep("400 millis")
          yield* storage.reapExpired()
          const read = yield* storage.readLogs(Access.all, build.id, 0, 100)
          expect(read.truncated).toBe(true)
          expect(read.lastSeq).toBe(21)
          expect(read.lines.at(-1)).toMatchObject({ seq: 21, stream: "system" })
          expect(read.lines.at(-1)!.text).toContain("[kiln] lost: ")
          // What is stored (the truncation marker is not) stays within head + tail.
          const stored = read.lines.filter((line) => !line.text.includes("dropped to stay within"))
          expect(stored.reduce((sum, line) => sum + byteLength(line.text), 0)).toBeLessThanOrEqual(100 + 200)
        }),
      { storage: { logBudget: { headBytes: 100, tailBytes: 200 } } }
    )

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
        // Only the reaper's line: none of the owner's.
        expect((yield* storage.readLogs(Access.all, build.id, 0, 10)).lines).toMatchObject([
          { seq: 1, stream: "system" }
        ])
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
