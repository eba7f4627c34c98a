/**
 * The builds this process runs. A build holds one of the engine's slots while the runner has it; once the
 * runner has stopped and cleaned up, it only writes its last log lines and final state, and its slot goes to
 * the next while it finishes.
 */
import { Deferred, Effect, Exit, Fiber } from "effect"
import type { Build } from "../../Build.ts"
import type { BuildId } from "../../Id.ts"
import type { Outcome } from "./outcome.ts"

/** A build's run, given how to stop it and how to give its slot back. */
export type Run = (
  build: Build,
  stop: Deferred.Deferred<Outcome>,
  release: Effect.Effect<void>
) => Effect.Effect<void>

export interface RunningBuilds {
  /** How many slots are taken. */
  readonly size: () => number
  /** The builds holding a slot. */
  readonly ids: () => ReadonlyArray<BuildId>
  /** Starts a build's run in a slot of its own, detached from the caller. */
  readonly start: (build: Build) => Effect.Effect<void>
  /** Ends a build's run as cancelled, if it holds a slot here. */
  readonly cancel: (id: BuildId) => Effect.Effect<void>
  /**
   * Lets every build finish within `graceMs`; then cancels those still holding a slot, asking storage to
   * record the request first, and waits for every build to finish.
   */
  readonly shutdown: (
    graceMs: number,
    requestCancel: (id: BuildId) => Effect.Effect<void>
  ) => Effect.Effect<void>
}

interface Slot {
  readonly stop: Deferred.Deferred<Outcome>
  readonly fiber: Fiber.Fiber<void>
}

/** `onRelease` runs whenever a slot comes free. */
export const makeRunningBuilds = (run: Run, onRelease: Effect.Effect<void>): RunningBuilds => {
  const running = new Map<BuildId, Slot>()
  const finishing = new Map<BuildId, Fiber.Fiber<void>>()
  const fibers = () => [...running.values()].map((slot) => slot.fiber).concat([...finishing.values()])
  const stopCancelled = (slot: Slot) => Deferred.succeed(slot.stop, { _tag: "Cancelled" })

  const start = (build: Build) =>
    Effect.gen(function* () {
      const stop = yield* Deferred.make<Outcome>()
      // The build starts once it is registered, so its release always finds its entry.
      const registered = yield* Deferred.make<void>()
      const release = Effect.sync(() => {
        const slot = running.get(build.id)
        if (slot === undefined) return
        running.delete(build.id)
        finishing.set(build.id, slot.fiber)
      }).pipe(Effect.andThen(onRelease))
      const fiber = yield* Effect.forkDetach(
        Deferred.await(registered).pipe(
          Effect.andThen(run(build, stop, release)),
          Effect.ensuring(release.pipe(Effect.andThen(Effect.sync(() => finishing.delete(build.id)))))
        )
      )
      running.set(build.id, { stop, fiber })
      yield* Deferred.succeed(registered, undefined)
    })

  const shutdown = (graceMs: number, requestCancel: (id: BuildId) => Effect.Effect<void>) =>
    Effect.gen(function* () {
      const all = fibers()
      if (all.length === 0) return
      yield* Effect.logInfo(`shutting down: waiting for ${all.length} running builds`)
      const finished = yield* Fiber.awaitAll(all).pipe(Effect.timeout(`${graceMs} millis`), Effect.exit)
      if (Exit.isSuccess(finished)) return
      for (const [id, slot] of running) {
        yield* requestCancel(id)
        yield* stopCancelled(slot)
      }
      yield* Fiber.awaitAll(fibers())
    })

  return {
    size: () => running.size,
    ids: () => [...running.keys()],
    start,
    cancel: (id) => {
      const slot = running.get(id)
      return slot === undefined ? Effect.void : Effect.asVoid(stopCancelled(slot))
    },
    shutdown
  }
}
