/**
 * Claiming queued builds: oldest first, at most `max`, within the per-workspace and per-app caps, each
 * moved to `initializing` under a lease on the transaction's clock.
 */
import { DateTime, Effect, Result } from "effect"
import type { Build } from "../../Build.ts"
import * as BuildState from "../../BuildState.ts"
import { buildChanged } from "../../Change.ts"
import * as Claim from "../../Claim.ts"
import * as Event from "../../Event.ts"
import * as Id from "../../Id.ts"
import * as LogBudget from "../../LogBudget.ts"
import type { Transaction } from "../../StorageDriver.ts"
import { eventsWritten, insertEvents, type Lifecycle } from "./context.ts"

/**
 * Chooses what a claim takes. `Claim.select` reads candidates oldest first and stops at `max`; they come
 * in growing batches, since the caps may thin a batch out below `max`. Choosing from a prefix of the queue
 * picks what choosing from the whole queue would, so each batch starts over.
 */
const choose = (tx: Transaction, request: Claim.ClaimRequest) =>
  Effect.gen(function* () {
    if (!Claim.hasCaps(request.limits)) return yield* tx.queuedOldest(request.max)
    if (tx.lockClaims !== undefined) yield* tx.lockClaims
    const active = yield* tx.activeCounts
    for (let batch = request.max * 4; ; batch *= 4) {
      const queued = yield* tx.queuedOldest(batch)
      const chosen = Claim.select(queued, active, request.max, request.limits)
      if (chosen.length >= request.max || queued.length < batch) return chosen
    }
  })

/**
 * Claims in one transaction. A build whose compare-and-set misses was taken by another claimer since it
 * was read (a driver need not lock queued rows it reads), so it is skipped, not retried.
 */
const claimInTransaction = (lifecycle: Lifecycle, request: Claim.ClaimRequest) =>
  lifecycle.driver.transaction((tx) =>
    Effect.gen(function* () {
      const chosen = yield* choose(tx, request)
      if (chosen.length === 0) return []
      const at = yield* tx.now
      const leaseExpiresAt = DateTime.add(at, { milliseconds: request.leaseMs })
      const claimed: Array<Build> = []
      for (const build of chosen) {
        const next = BuildState.transition(build, {
          _tag: "Claim",
          at,
          owner: request.owner,
          attempt: build.attempt + 1,
          leaseExpiresAt
        })
        if (Result.isSuccess(next) && (yield* tx.writeBuild(build, next.success))) claimed.push(next.success)
      }
      const nextId = yield* Id.generator("msg")
      yield* insertEvents(
        tx,
        claimed.map((build) => Event.forClaim(build, nextId))
      )
      return claimed
    })
  )

export const claimNext = (lifecycle: Lifecycle) =>
  Effect.fnUntraced(function* (request: Claim.ClaimRequest) {
    if (request.max <= 0) return []
    const fast = lifecycle.driver.fastPaths?.claimOldest
    const nextId = yield* Id.generator("msg")
    const claimed =
      fast !== undefined && !Claim.hasCaps(request.limits)
        ? yield* fast(request, (count) => Array.from({ length: count }, nextId))
        : yield* claimInTransaction(lifecycle, request)
    for (const build of claimed) {
      lifecycle.known.track(build)
      // A build is claimed before any line of its log can be stored: its bookkeeping starts empty.
      lifecycle.known.trackLog(build, LogBudget.emptyStats)
    }
    yield* lifecycle.publish(claimed.length === 0 ? [] : [...claimed.map(buildChanged), eventsWritten])
    return claimed
  })
