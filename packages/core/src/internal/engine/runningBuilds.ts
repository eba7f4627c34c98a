/**
 * The builds this process holds. A build holds one of the engine's slots while the runner has it; once the
 * runner has stopped and cleaned up, it only writes its last log lines and final state, and its slot goes to
 * the next while it finishes. Builds claimed ahead of a free slot wait here, in claim order, and take the
 * next slot that comes free: the claim's round trip is then not between one build and the next.
 */
import { Clock, type Context, Deferred, Effect, Exit, Fiber } from "effect"
import type { Build } from "../../Build.ts"
import type { BuildId } from "../../Id.ts"
import type { Outcome } from "./outcome.ts"

/** A build's run, given how to stop it, how to give its slot back, and how long it waited for the slot. */
export type Run = (
  build: Build,
  stop: Deferred.Deferred<Outcome>,
  release: Effect.Effect<void>,
  waitedMs: number
) => Effect.Effect<void>

export interface RunningBuildsInput {
  readonly run: Run
  /** How many builds run at once. */
  readonly concurrency: number
  /** Runs whenever a slot comes free. */
  readonly onRelease: Effect.Effect<void>
  /**
   * Gives a build that waited here back to the queue without running it (storage stops it instead, with
   * its log's cancel line, if a cancel was requested meanwhile).
   */
  readonly giveBack: (build: Build) => Effect.Effect<void>
  /** How long a build may wait for a slot; one that waited longer is given back rather than started. */
  readonly holdMs: number
  /**
   * What every run starts in: the engine's own context, not the fiber that happens to start it (the claim
   * loop, or the run that freed the slot, whose span and annotations are not the next build's).
   */
  readonly context: Context.Context<never>
}

export interface RunningBuilds {
  /** How many slots are taken. */
  readonly size: () => number
  /** How many builds are held: those in a slot and those waiting for one. */
  readonly held: () => number
  /** The builds held, in a slot or waiting. */
  readonly ids: () => ReadonlyArray<BuildId>
  /** The builds in a slot. */
  readonly runningIds: () => ReadonlyArray<BuildId>
  /** How long a run has lately held its slot, in milliseconds; undefined until one has. */
  readonly typicalRunMs: () => number | undefined
  /** Starts a build's run in a free slot, detached from the caller, or keeps it waiting for one. */
  readonly start: (build: Build) => Effect.Effect<void>
  /** Ends a build's run as cancelled, if it holds a slot here; one still waiting is given back. */
  readonly cancel: (id: BuildId) => Effect.Effect<void>
  /** Gives back the builds that have waited longer than `ms`. */
  readonly giveBackWaiting: (ms: number) => Effect.Effect<void>
  /**
   * Gives back every build still waiting; lets every running build finish within `graceMs`; then cancels
   * those still holding a slot, asking storage to record the request first, and waits for every build to
   * finish.
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

interface Waiting {
  readonly build: Build
  readonly since: number
}

/** The weight of the latest run in `typicalRunMs`: recent runs count most. */
const weight = 0.2

export const makeRunningBuilds = (input: RunningBuildsInput): RunningBuilds => {
  const { concurrency } = input
  const running = new Map<BuildId, Slot>()
  const finishing = new Map<BuildId, Fiber.Fiber<void>>()
  let waiting: Array<Waiting> = []
  let typicalRunMs: number | undefined
  const fibers = () => [...running.values()].map((slot) => slot.fiber).concat([...finishing.values()])
  const stopCancelled = (slot: Slot) => Deferred.succeed(slot.stop, { _tag: "Cancelled" })
  const giveBackAll = (builds: ReadonlyArray<Waiting>) =>
    Effect.forEach(builds, ({ build }) => input.giveBack(build), { discard: true })

  const launch = (build: Build, waitedMs: number): Effect.Effect<void> =>
    Effect.gen(function* () {
      const stop = yield* Deferred.make<Outcome>()
      const launched = yield* Clock.currentTimeMillis
      // The build starts once it is registered, so its release always finds its entry.
      const registered = yield* Deferred.make<void>()
      const release = Effect.gen(function* () {
        const slot = running.get(build.id)
        if (slot === undefined) return
        running.delete(build.id)
        finishing.set(build.id, slot.fiber)
        const ran = (yield* Clock.currentTimeMillis) - launched
        typicalRunMs = typicalRunMs === undefined ? ran : typicalRunMs + weight * (ran - typicalRunMs)
        // The next waiting build takes the slot before anything else can; one that waited too long for its
        // lease goes back instead.
        while (waiting.length > 0) {
          const next = waiting.shift()!
          const waited = (yield* Clock.currentTimeMillis) - next.since
          if (waited <= input.holdMs) {
            yield* launch(next.build, waited)
            break
          }
          yield* input.giveBack(next.build)
        }
        yield* input.onRelease
      })
      const fiber = yield* Effect.forkDetach(
        Deferred.await(registered).pipe(
          Effect.andThen(input.run(build, stop, release, waitedMs)),
          Effect.ensuring(release.pipe(Effect.andThen(Effect.sync(() => finishing.delete(build.id))))),
          Effect.provideContext(input.context)
        )
      )
      running.set(build.id, { stop, fiber })
      yield* Deferred.succeed(registered, undefined)
    })

  const start = (build: Build) =>
    running.size < concurrency
      ? launch(build, 0)
      : Effect.map(Clock.currentTimeMillis, (since) => {
          waiting.push({ build, since })
        })

  const giveBackWaiting = (ms: number) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const stale = waiting.filter(({ since }) => now - since > ms)
      if (stale.length === 0) return Effect.void
      waiting = waiting.filter(({ since }) => now - since <= ms)
      return giveBackAll(stale)
    })

  const shutdown = (graceMs: number, requestCancel: (id: BuildId) => Effect.Effect<void>) =>
    Effect.gen(function* () {
      const unstarted = waiting
      waiting = []
      yield* giveBackAll(unstarted)
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
    held: () => running.size + waiting.length,
    ids: () => [...running.keys(), ...waiting.map(({ build }) => build.id)],
    runningIds: () => [...running.keys()],
    typicalRunMs: () => typicalRunMs,
    start,
    cancel: (id) => {
      const slot = running.get(id)
      if (slot !== undefined) return Effect.asVoid(stopCancelled(slot))
      const unstarted = waiting.filter(({ build }) => build.id === id)
      if (unstarted.length === 0) return Effect.void
      waiting = waiting.filter(({ build }) => build.id !== id)
      return giveBackAll(unstarted)
    },
    giveBackWaiting,
    shutdown
  }
}
