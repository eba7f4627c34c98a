import { describe, expect } from "@effect/vitest"
import { Clock, DateTime, Effect } from "effect"
import * as Access from "../../Access.ts"
import type { BuildStep } from "../../Build.ts"
import { type BuildEvent, type Fence, maxTextBytes } from "../../BuildState.ts"
import * as Fields from "../../Fields.ts"
import * as Query from "../../Query.ts"
import { Storage } from "../../Storage.ts"
import { assertValidBuild, claimOne, type MakeStorage, queue, seed, test, unissued } from "./fixtures.ts"

const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))

const step = (index: number, name: string, status: BuildStep["status"], at: DateTime.Utc): BuildStep => ({
  index,
  name,
  status,
  startedAt: at,
  completedAt: status === "running" ? null : at,
  exitCode: status === "failed" ? 2 : null,
  error: null
})

/** Fenced compare-and-set transitions, cancel requests and steps. */
export const transitions = (name: string, make: MakeStorage) =>
  describe(`${name} › storage: transitions and fencing`, () => {
    const it = test(make)

    it("runs a claimed build to success, recording each timestamp and the artifact", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        yield* queue(version)
        const { build, fence } = yield* claimOne("engine-a")
        expect(build).toMatchObject({
          phase: "initializing",
          status: "running",
          owner: "engine-a",
          attempt: 1
        })
        expect(build.startedAt).not.toBeNull()
        const running = yield* storage.transition(build.id, { _tag: "Started", at: yield* now, ...fence })
        expect(running.phase).toBe("running")
        expect(running.runningAt).not.toBeNull()
        const done = yield* storage.transition(build.id, {
          _tag: "Succeeded",
          at: yield* now,
          ...fence,
          imageTag: "registry.local/web:00000000",
          imageDigest: "sha256:abc"
        })
        assertValidBuild(done)
        expect(done).toMatchObject({
          phase: "stopped",
          outcome: "success",
          status: "completed",
          imageTag: "registry.local/web:00000000",
          imageDigest: "sha256:abc",
          leaseExpiresAt: null
        })
        expect(yield* storage.getBuild(Access.all, build.id)).toEqual({ ...done, steps: [] })
      }))

    it("records failure and timeout with their error", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        yield* queue(version, 2)
        const first = yield* claimOne("engine")
        const failed = yield* storage.transition(first.build.id, {
          _tag: "Failed",
          at: yield* now,
          ...first.fence,
          error: "exit code 2"
        })
        expect(failed).toMatchObject({ outcome: "failure", status: "failed", error: "exit code 2" })
        const second = yield* claimOne("engine")
        yield* storage.transition(second.build.id, { _tag: "Started", at: yield* now, ...second.fence })
        const timedOut = yield* storage.transition(second.build.id, {
          _tag: "TimedOut",
          at: yield* now,
          ...second.fence,
          error: "timed out after 1s"
        })
        expect(timedOut).toMatchObject({
          outcome: "timed_out",
          status: "failed",
          error: "timed out after 1s"
        })
        assertValidBuild(failed)
        assertValidBuild(timedOut)
      }))

    it("rejects writes under a stale fence and leaves the build as it was", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        yield* queue(version)
        const { build, fence } = yield* claimOne("engine-a")
        const impostors: ReadonlyArray<Fence> = [
          { owner: "engine-b", attempt: fence.attempt },
          { owner: fence.owner, attempt: fence.attempt + 1 },
          { owner: fence.owner, attempt: 0 }
        ]
        for (const impostor of impostors) {
          const error = yield* Effect.flip(
            storage.transition(build.id, { _tag: "Started", at: yield* now, ...impostor })
          )
          expect(error._tag).toBe("LeaseLost")
          expect((yield* Effect.flip(storage.heartbeat(build.id, impostor, 1000)))._tag).toBe("LeaseLost")
        }
        const stored = yield* storage.getBuild(Access.all, build.id)
        expect(stored.phase).toBe("initializing")
        expect(stored.owner).toBe("engine-a")
        const missing = yield* Effect.flip(
          storage.transition(unissued.build, {
            _tag: "Started",
            at: yield* now,
            ...fence
          })
        )
        expect(missing._tag).toBe("StorageNotFound")
      }))

    it("gives back an unstarted claim: queued again with a build.requeued event, claimed anew", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        yield* queue(version)
        const { build, fence } = yield* claimOne("engine-a")
        const released = yield* storage.transition(build.id, { _tag: "Release", at: yield* now, ...fence })
        assertValidBuild(released)
        expect(released).toMatchObject({ phase: "queued", status: "pending", owner: null, attempt: 1 })
        expect(released.startedAt).toBeNull()
        expect(released.leaseExpiresAt).toBeNull()
        const events = yield* storage.readEvents(Access.all, { after: null, types: null, limit: 100 })
        expect(events.filter((event) => event.subject === build.id).map((event) => event.type)).toEqual([
          "build.queued",
          "build.running",
          "build.requeued"
        ])
        // The next claim is a new attempt; the old fence holds nothing.
        const again = yield* claimOne("engine-b")
        expect(again.build).toMatchObject({ id: build.id, owner: "engine-b", attempt: 2 })
        const late = yield* Effect.flip(
          storage.transition(build.id, { _tag: "Release", at: yield* now, ...fence })
        )
        expect(late._tag).toBe("LeaseLost")
        // A started build can not be given back.
        yield* storage.transition(build.id, { _tag: "Started", at: yield* now, ...again.fence })
        const started = yield* Effect.flip(
          storage.transition(build.id, { _tag: "Release", at: yield* now, ...again.fence })
        )
        expect(started._tag).toBe("InvalidTransition")
        expect((yield* storage.readLogs(Access.all, build.id, 0, 10)).lines).toEqual([])
      }))

    it("stops an unstarted claim given back after a cancel request, its log saying so", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        yield* queue(version)
        const { build, fence } = yield* claimOne("engine")
        yield* storage.requestCancel(Access.all, build.id, "not needed")
        const stopped = yield* storage.transition(build.id, { _tag: "Release", at: yield* now, ...fence })
        assertValidBuild(stopped)
        expect(stopped).toMatchObject({ status: "cancelled", outcome: "cancelled", runningAt: null })
        const { lines } = yield* storage.readLogs(Access.all, build.id, 0, 10)
        expect(lines.map(({ seq, stream, text }) => ({ seq, stream, text }))).toEqual([
          { seq: 1, stream: "system", text: "[kiln] cancelled: not needed" }
        ])
      }))

    it("never changes a stopped build: owner writes lose the lease, other events are invalid", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        yield* queue(version)
        const { build, fence } = yield* claimOne("engine")
        const done = yield* storage.transition(build.id, {
          _tag: "Failed",
          at: yield* now,
          ...fence,
          error: "boom"
        })
        const late: ReadonlyArray<BuildEvent> = [
          { _tag: "Succeeded", at: yield* now, ...fence, imageTag: "x", imageDigest: null },
          { _tag: "Started", at: yield* now, ...fence },
          { _tag: "Stopped", at: yield* now, ...fence }
        ]
        for (const event of late) {
          expect((yield* Effect.flip(storage.transition(build.id, event)))._tag).toBe("LeaseLost")
        }
        const invalid: ReadonlyArray<BuildEvent> = [
          { _tag: "Cancel", at: yield* now, reason: "late" },
          { _tag: "Skip", at: yield* now, reason: "late" },
          { _tag: "LeaseExpired", at: DateTime.add(yield* now, { hours: 1 }) },
          { _tag: "Claim", at: yield* now, owner: "x", attempt: 2, leaseExpiresAt: yield* now }
        ]
        for (const event of invalid) {
          expect((yield* Effect.flip(storage.transition(build.id, event)))._tag).toBe("InvalidTransition")
        }
        expect((yield* Effect.flip(storage.heartbeat(build.id, fence, 1000)))._tag).toBe("LeaseLost")
        expect(yield* storage.getBuild(Access.all, build.id)).toEqual({ ...done, steps: [] })
      }))

    it("cancels a queued build at once and reports a stopped one as not accepted", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        const [build] = yield* queue(version)
        const { build: cancelled, accepted } = yield* storage.requestCancel(
          Access.all,
          build!.id,
          "not needed"
        )
        expect(accepted).toBe(true)
        assertValidBuild(cancelled)
        expect(cancelled).toMatchObject({
          phase: "stopped",
          outcome: "cancelled",
          status: "cancelled",
          cancelReason: "not needed"
        })
        expect(cancelled.cancelRequestedAt).not.toBeNull()
        const again = yield* storage.requestCancel(Access.all, build!.id, "twice")
        expect(again).toEqual({ build: cancelled, accepted: false })
        expect(yield* storage.claimNext({ owner: "engine", leaseMs: 10_000, max: 1 })).toEqual([])
      }))

    it("records a cancel request on a claimed build for its owner, who then stops it", () =>
      Effect.gen(function* () {
        const { storage, version, workspace } = yield* seed()
        yield* queue(version)
        const { build, fence } = yield* claimOne("engine")
        yield* storage.transition(build.id, { _tag: "Started", at: yield* now, ...fence })
        const other = yield* storage.createWorkspace({ name: "other" })
        expect(
          (yield* Effect.flip(storage.requestCancel(Access.workspaces([other.id]), build.id, null)))._tag
        ).toBe("StorageNotFound")
        const requested = yield* storage.requestCancel(
          Access.workspaces([workspace.id]),
          build.id,
          "user asked"
        )
        expect(requested.accepted).toBe(true)
        expect(requested.build).toMatchObject({ phase: "running", cancelReason: "user asked" })
        const first = requested.build.cancelRequestedAt!
        const repeated = yield* storage.requestCancel(Access.all, build.id, "again")
        expect(repeated.build.cancelReason).toBe("user asked")
        expect(DateTime.toEpochMillis(repeated.build.cancelRequestedAt!)).toBe(DateTime.toEpochMillis(first))
        const renewed = yield* storage.heartbeat(build.id, fence, 30_000)
        expect(renewed.cancelRequestedAt).not.toBeNull()
        const stopped = yield* storage.transition(build.id, { _tag: "Stopped", at: yield* now, ...fence })
        assertValidBuild(stopped)
        expect(stopped).toMatchObject({ outcome: "cancelled", cancelReason: "user asked" })
      }))

    it("refuses a stop without a cancel request", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        yield* queue(version)
        const { build, fence } = yield* claimOne("engine")
        const error = yield* Effect.flip(
          storage.transition(build.id, { _tag: "Stopped", at: yield* now, ...fence })
        )
        expect(error._tag).toBe("InvalidTransition")
        expect((yield* storage.getBuild(Access.all, build.id)).phase).toBe("initializing")
      }))

    it("records steps in order under the fence, replacing a step by its index", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        yield* queue(version)
        const { build, fence } = yield* claimOne("engine")
        const at = yield* now
        yield* storage.recordStep(build.id, fence, step(1, "build", "running", at))
        yield* storage.recordStep(build.id, fence, step(0, "prepare", "succeeded", at))
        yield* storage.recordStep(build.id, fence, step(1, "build", "failed", at))
        const stale = yield* Effect.flip(
          storage.recordStep(build.id, { ...fence, owner: "other" }, step(2, "push", "running", at))
        )
        expect(stale._tag).toBe("LeaseLost")
        const { steps } = yield* storage.getBuild(Access.all, build.id)
        expect(steps.map((s) => [s.index, s.name, s.status, s.exitCode])).toEqual([
          [0, "prepare", "succeeded", null],
          [1, "build", "failed", 2]
        ])
        expect(DateTime.toEpochMillis(steps[0]!.startedAt)).toBe(DateTime.toEpochMillis(at))
        yield* storage.transition(build.id, { _tag: "Failed", at, ...fence, error: "step build failed" })
        const afterStop = yield* Effect.flip(
          storage.recordStep(build.id, fence, step(2, "push", "running", at))
        )
        expect(afterStop._tag).toBe("LeaseLost")
        expect(yield* Storage.use((s) => s.getBuild(Access.all, build.id))).toMatchObject({
          steps: { length: 2 }
        })
      }))

    it("keeps at most maxTextBytes of a long author, error and cancel reason, and lists builds sorted on them", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        // 3,000 two-byte characters in no pattern: 6,000 bytes of UTF-8 that do not compress, more than
        // PostgreSQL takes in an index entry.
        const long = (seed: number) =>
          String.fromCharCode(
            ...Array.from({ length: 3000 }, (_, i) => 0x100 + ((seed * 7919 + i * i * 104_729) % 0x700))
          )
        const kept = (text: string | null) => {
          expect(text).not.toBeNull()
          expect(new TextEncoder().encode(text!).length).toBeLessThanOrEqual(maxTextBytes)
          expect(text!.endsWith("…")).toBe(true)
          return text!.slice(0, -1)
        }
        const create = storage.createBuild(Access.all, {
          appVersionId: version.id,
          trigger: "manual",
          createdBy: long(1)
        })
        const failed = yield* create
        expect(long(1).startsWith(kept(failed.createdBy))).toBe(true)
        const cancelled = yield* create
        const { build, fence } = yield* claimOne("engine")
        expect(build.id).toBe(failed.id)
        const stopped = yield* storage.transition(build.id, {
          _tag: "Failed",
          at: yield* now,
          ...fence,
          error: long(2)
        })
        expect(long(2).startsWith(kept(stopped.error))).toBe(true)
        const { build: requested } = yield* storage.requestCancel(Access.all, cancelled.id, long(3))
        expect(long(3).startsWith(kept(requested.cancelReason))).toBe(true)
        for (const field of ["createdBy", "error", "cancelReason"] as const) {
          const query = yield* Query.fromParams(Fields.builds, Access.all, {
            orderBy: JSON.stringify([{ [field]: "desc_nulls_last" }])
          })
          const page = yield* storage.listBuilds(Access.all, query)
          expect(page.rows.map((row) => row[field])).toEqual(
            [failed, cancelled]
              .map((one) => (field === "createdBy" ? one : one.id === failed.id ? stopped : requested))
              .map((one) => one[field])
              .sort()
              .reverse()
          )
        }
      }))
  })
