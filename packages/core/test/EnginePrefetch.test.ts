/**
 * Claiming ahead: once runs are short, the engine claims builds ahead of its one slot; a build that waits
 * longer than a third of its lease, one asked to cancel, and every one still waiting at shutdown leave
 * without running. Storage here sends no notifications, so claims happen only on the poll or when a slot
 * comes free: the builds queued between two polls are claimed together.
 */
import { describe, expect, it } from "@effect/vitest"
import { Access, type Build, Engine, Storage } from "@kiln/core"
import { Builds } from "@kiln/core/testing"
import { Clock, Effect, Fiber, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import { heartbeat } from "../src/internal/engine/heartbeat.ts"
import { appWith, engineLayer, type Spy, services } from "./engineFixtures.ts"

const spy = (): Spy => ({ calls: [], appendSizes: [] })

/** An engine with one slot, the poll every `pollIntervalMs`, in a scope of its own. */
const startEngine = (options: Engine.EngineOptions) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      engineLayer({ concurrency: 1, prefetch: 2, pollIntervalMs: 300, ...options }),
      scope
    )
    return { engine: context.mapUnsafe.get(Engine.Engine.key) as Engine.EngineShape, scope }
  })

/** One quick build run to completion, so the engine knows its runs are short; then `n` slow ones queued. */
const shortThenSlow = (n: number) =>
  Effect.gen(function* () {
    const quick = yield* appWith("echo quick")
    const [first] = yield* quick.queue()
    yield* Builds.stopped(first!.id)
    const slow = yield* appWith("sleep 1; echo slow")
    return yield* slow.queue(n)
  })

const held = (builds: ReadonlyArray<Build.Build>) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    while (true) {
      const now = yield* Effect.forEach(builds, (build) => storage.getBuild(Access.all, build.id))
      if (now.every((build) => build.phase !== "queued")) return now
      yield* Effect.sleep("20 millis")
    }
  }).pipe(Effect.timeout("10 seconds"))

const requeued = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  const events = yield* storage.readEvents(Access.all, { after: null, types: null, limit: 1000 })
  return events.filter((event) => event.type === "build.requeued").map((event) => event.subject)
})

describe("Engine claiming ahead", () => {
  it.live("claims ahead of its busy slot and gives back what still waits at shutdown", () =>
    Effect.gen(function* () {
      const { engine, scope } = yield* startEngine({})
      const slow = yield* shortThenSlow(3)
      yield* held(slow)
      const running = yield* engine.running
      expect(running).toHaveLength(1)
      const waiting = slow.filter((build) => !running.includes(build.id))
      expect(waiting).toHaveLength(2)

      yield* Scope.close(scope, undefined as never)
      const storage = yield* Storage.Storage
      // The running one finished within the grace; the waiting ones are queued again, never run.
      expect((yield* storage.getBuild(Access.all, running[0]!)).status).toBe("completed")
      for (const build of waiting) {
        expect(yield* storage.getBuild(Access.all, build.id)).toMatchObject({
          phase: "queued",
          status: "pending",
          owner: null,
          leaseExpiresAt: null,
          startedAt: null,
          runningAt: null,
          attempt: 1
        })
      }
      expect((yield* requeued).sort()).toEqual(waiting.map((build) => build.id).sort())
    }).pipe(Effect.provide(services(spy(), { silent: true })))
  )

  it.live("gives back a build that waits past a third of its lease, and runs it later", () =>
    Effect.gen(function* () {
      yield* startEngine({ leaseMs: 900 })
      const slow = yield* shortThenSlow(3)
      const done = yield* Effect.forEach(slow, (build) => Builds.stopped(build.id, "20 seconds"))
      expect(done.map((build) => build.status)).toEqual(["completed", "completed", "completed"])
      // Claimed with the first, two waited 300 ms and went back; each ran on its second claim.
      expect(done.map((build) => build.attempt).sort()).toEqual([1, 2, 2])
      expect((yield* requeued).sort()).toEqual(
        done
          .filter((build) => build.attempt === 2)
          .map((build) => build.id)
          .sort()
      )
    }).pipe(Effect.provide(services(spy(), { silent: true })))
  )

  it.live("stops a waiting build asked to cancel, without running it, and says so in its log", () =>
    Effect.gen(function* () {
      const { engine } = yield* startEngine({})
      const slow = yield* shortThenSlow(3)
      yield* held(slow)
      const running = yield* engine.running
      const [waiting] = slow.filter((build) => !running.includes(build.id))
      const storage = yield* Storage.Storage
      yield* storage.requestCancel(Access.all, waiting!.id, "not needed")
      const stopped = yield* Builds.stopped(waiting!.id, "5 seconds")
      expect(stopped).toMatchObject({ status: "cancelled", cancelReason: "not needed", runningAt: null })
      const log = yield* Builds.logOf(waiting!.id)
      expect(log.map(({ seq, stream, text }) => ({ seq, stream, text }))).toEqual([
        { seq: 1, stream: "system", text: "[kiln] cancelled: not needed" }
      ])
    }).pipe(Effect.provide(services(spy(), { silent: true })))
  )
})

describe("heartbeat", () => {
  // A unit test of the schedule: renewals are recorded, not stored.
  const renewalsAt = (waitedMs: number) =>
    Effect.gen(function* () {
      const start = yield* Clock.currentTimeMillis
      const at: Array<number> = []
      const fiber = yield* Effect.forkChild(
        heartbeat({
          storage: {
            heartbeat: () =>
              Effect.map(Clock.currentTimeMillis, (now) => {
                at.push(now - start)
                return { cancelRequestedAt: null } as Build.Build
              })
          },
          buildId: "bld_x" as Build.Build["id"],
          fence: { owner: "a", attempt: 1 },
          leaseMs: 900,
          onLeaseLost: Effect.void,
          onCancelRequested: Effect.void,
          waitedMs
        })
      )
      for (let ms = 50; ms <= 650; ms += 50) yield* TestClock.adjust("50 millis")
      yield* Fiber.interrupt(fiber)
      return at
    })

  it.effect("renews every third of the lease from the claim, the first sooner for a build that waited", () =>
    Effect.gen(function* () {
      expect(yield* renewalsAt(0)).toEqual([300, 600])
      expect(yield* renewalsAt(200)).toEqual([100, 400])
      expect(yield* renewalsAt(500)).toEqual([0, 300, 600])
    })
  )
})
