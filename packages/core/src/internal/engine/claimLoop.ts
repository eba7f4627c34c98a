/**
 * Claims queued builds into free slots: at once while a claim comes back full, otherwise when woken (a build
 * was queued or a slot came free) or every poll interval, until stopped.
 */
import { Clock, Effect, Queue, Ref } from "effect"
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
  readonly limits: Limits | undefined
  readonly pollIntervalMs: number
  readonly builds: Pick<RunningBuilds, "size" | "start">
  /** Offered to when the loop should look again before its poll interval is up. */
  readonly wake: Queue.Queue<void>
  readonly metrics: MetricsShape
  /** Each claim round in a span (`Tracing`). */
  readonly traced: boolean
}

export interface ClaimLoop {
  /** Runs until stopped. */
  readonly run: Effect.Effect<void>
  /** Claims nothing more: a claim under way starts none of what it took. */
  readonly stop: Effect.Effect<void>
}

export const makeClaimLoop = (input: ClaimLoopInput): Effect.Effect<ClaimLoop> =>
  Effect.gen(function* () {
    const { storage, builds, concurrency, wake } = input
    const stopping = yield* Ref.make(false)
    const run = Effect.gen(function* () {
      while (!(yield* Ref.get(stopping))) {
        const free = concurrency - builds.size()
        let claimed: ReadonlyArray<Build> = []
        if (free > 0) {
          const started = yield* Clock.currentTimeMillis
          claimed = yield* storage
            .claimNext({ owner: input.owner, leaseMs: input.leaseMs, max: free, limits: input.limits })
            .pipe(spanIf(input.traced, "kiln.engine.claim", { "kiln.free_slots": free }))
            .pipe(Effect.catch((error) => Effect.logWarning("claim failed", error).pipe(Effect.as([]))))
          input.metrics.claimed((yield* Clock.currentTimeMillis) - started, claimed.length)
          if (yield* Ref.get(stopping)) return
          for (const build of claimed) yield* builds.start(build)
          input.metrics.slots(builds.size(), concurrency)
        }
        // A full claim may leave more work queued: look again at once.
        if (free > 0 && claimed.length === free) continue
        yield* Queue.take(wake).pipe(Effect.timeout(`${input.pollIntervalMs} millis`), Effect.ignore)
      }
    })
    return {
      run,
      stop: Ref.set(stopping, true).pipe(Effect.andThen(Queue.offer(wake, undefined)), Effect.asVoid)
    }
  })
