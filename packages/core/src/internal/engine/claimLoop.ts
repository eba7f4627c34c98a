/**
 * Claims queued builds into free slots, and ahead of them: at once while a claim comes back full, otherwise
 * when woken (a build was queued or a slot came free) or every poll interval, until stopped.
 *
 * How far ahead follows how long runs take: as many builds as the slots would start within a sixth of the
 * lease, at most `prefetch`, so short builds never wait on a claim's round trip while long ones are not held
 * from other processes. A build that still waits after a third of its lease is given back to the queue, and
 * so is anything claimed once stopping.
 */
import { Cause, Clock, Deferred, Effect, Queue, Ref } from "effect"
import type { Build } from "../../Build.ts"
import type { Limits } from "../../Claim.ts"
import type { MetricsShape } from "../../Metrics.ts"
import type { StorageShape } from "../../Storage.ts"
import { spanIf } from "../spans.ts"
import type { RunningBuilds } from "./runningBuilds.ts"

export interface ClaimLoopInput {
  readonly storage: Pick<StorageShape, "claimNext">
  readonly owner: string
  readonly leaseMs: number
  readonly concurrency: number
  /** The most builds claimed ahead of free slots. */
  readonly prefetch: number
  readonly limits: Limits | undefined
  readonly pollIntervalMs: number
  readonly builds: Pick<RunningBuilds, "size" | "held" | "typicalRunMs" | "start" | "giveBackWaiting">
  /** Gives back a build claimed once stopping. */
  readonly giveBack: (build: Build) => Effect.Effect<void>
  /** Offered to when the loop should look again before its poll interval is up. */
  readonly wake: Queue.Queue<void>
  readonly metrics: MetricsShape
  /** Each claim round in a span (`Tracing`). */
  readonly traced: boolean
}

export interface ClaimLoop {
  /** Runs until stopped. */
  readonly run: Effect.Effect<void>
  /** Claims nothing more: a claim under way starts none of what it took and gives it back; waits for it. */
  readonly stop: Effect.Effect<void>
}

export const makeClaimLoop = (input: ClaimLoopInput): Effect.Effect<ClaimLoop> =>
  Effect.gen(function* () {
    const { storage, builds, concurrency, wake } = input
    const stopping = yield* Ref.make(false)
    const stopped = yield* Deferred.make<void>()
    const holdMs = Math.floor(input.leaseMs / 3)
    // Anything but a whole number of builds claims nothing ahead.
    const prefetch = Number.isInteger(input.prefetch) && input.prefetch > 0 ? input.prefetch : 0
    const ahead = () => {
      const typical = builds.typicalRunMs()
      if (typical === undefined) return 0
      return Math.min(prefetch, Math.floor((concurrency * holdMs) / 2 / Math.max(1, typical)))
    }
    /** One round: claims what fits; answers whether to look again at once, wait, or stop. */
    const round = Effect.gen(function* () {
      yield* builds.giveBackWaiting(holdMs)
      // Claims only while a slot is free: claiming to refill what waits while every slot is busy would
      // claim, hold and give back the same builds over and over whenever runs turn long.
      const free = builds.size() < concurrency ? concurrency + ahead() - builds.held() : 0
      if (free <= 0) return "wait" as const
      const started = yield* Clock.currentTimeMillis
      const claimed = yield* storage
        .claimNext({ owner: input.owner, leaseMs: input.leaseMs, max: free, limits: input.limits })
        .pipe(spanIf(input.traced, "kiln.engine.claim", { "kiln.free_slots": free }))
        .pipe(Effect.catch((error) => Effect.logWarning("claim failed", error).pipe(Effect.as([]))))
      input.metrics.claimed((yield* Clock.currentTimeMillis) - started, claimed.length)
      if (yield* Ref.get(stopping)) {
        yield* Effect.forEach(claimed, input.giveBack, { discard: true })
        return "stop" as const
      }
      for (const build of claimed) yield* builds.start(build)
      input.metrics.slots(builds.size(), concurrency)
      // A full claim may leave more work queued: look again at once.
      return claimed.length === free ? ("again" as const) : ("wait" as const)
    }).pipe(
      // A defect in a round (a storage bug, say) must not end the loop: the engine would never claim again,
      // and nothing would say why. It is logged, and the loop goes on after its poll interval.
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause)
          ? Effect.failCause(cause)
          : Effect.as(
              Effect.logError("claim round crashed; claiming again after the poll interval", cause),
              "wait" as const
            )
      )
    )
    const run = Effect.gen(function* () {
      while (!(yield* Ref.get(stopping))) {
        const next = yield* round
        if (next === "stop") return
        if (next === "again") continue
        // Waiting builds are looked at again within a quarter of their hold.
        const pollMs =
          builds.held() > builds.size()
            ? Math.min(input.pollIntervalMs, Math.max(50, holdMs / 4))
            : input.pollIntervalMs
        yield* Queue.take(wake).pipe(Effect.timeout(`${pollMs} millis`), Effect.ignore)
      }
    }).pipe(Effect.ensuring(Deferred.succeed(stopped, undefined)))
    return {
      run,
      // A claim stuck on its storage holds shutdown back only so long; the loop is interrupted after.
      stop: Ref.set(stopping, true).pipe(
        Effect.andThen(Queue.offer(wake, undefined)),
        Effect.andThen(Deferred.await(stopped).pipe(Effect.timeout("10 seconds"), Effect.ignore))
      )
    }
  })
