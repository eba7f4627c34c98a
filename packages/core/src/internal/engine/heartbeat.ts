/**
 * A running build's lease, kept: renewed every third of it, each renewal also telling whether someone asked
 * to cancel the build.
 */
import { Effect } from "effect"
import type { Fence } from "../../BuildState.ts"
import type { BuildId } from "../../Id.ts"
import type { StorageShape } from "../../Storage.ts"

export interface HeartbeatInput {
  readonly storage: Pick<StorageShape, "heartbeat">
  readonly buildId: BuildId
  readonly fence: Fence
  readonly leaseMs: number
  /** Storage refused a renewal: the lease is gone, as a peer reaped the build. */
  readonly onLeaseLost: Effect.Effect<void>
  /** A renewal found a cancel request on the build. */
  readonly onCancelRequested: Effect.Effect<void>
  /** How long the build waited for its slot since its claim took the lease. */
  readonly waitedMs: number
}

/** Renews the lease until interrupted; a renewal that fails for another reason is logged and tried again. */
export const heartbeat = (input: HeartbeatInput): Effect.Effect<never> => {
  const every = Math.max(50, Math.floor(input.leaseMs / 3))
  const renew = Effect.gen(function* () {
    const renewed = yield* input.storage.heartbeat(input.buildId, input.fence, input.leaseMs).pipe(
      Effect.catchTag("LeaseLost", () => input.onLeaseLost.pipe(Effect.as(undefined))),
      Effect.catch((error) => Effect.logWarning("heartbeat failed", error).pipe(Effect.as(undefined)))
    )
    if (renewed !== undefined && renewed.cancelRequestedAt !== null) yield* input.onCancelRequested
  })
  // The claim took the lease: the first renewal is due a third of the way through it, counted from the
  // claim, so a build that waited for its slot renews sooner and one failed renewal still leaves time.
  return Effect.andThen(
    Effect.sleep(`${Math.max(0, every - input.waitedMs)} millis`),
    Effect.forever(Effect.andThen(renew, Effect.sleep(`${every} millis`)))
  )
}
