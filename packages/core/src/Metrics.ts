/**
 * What the engine reports as it works, for a host's metrics: `@kiln/http`'s `KilnMetrics` records it in the
 * Prometheus format. Each call is synchronous and cheap, made where the work happens; without a `Metrics`
 * service in the engine's context nothing is recorded and nothing is paid.
 */
import { Context } from "effect"
import type { Build } from "./Build.ts"

/** How one attempt to deliver a webhook ended (see the delivery log). */
export type DeliveryResult = "delivered" | "rejected" | "refused" | "failed"

export interface MetricsShape {
  /** A claim round took `latencyMs` and claimed `builds`. */
  readonly claimed: (latencyMs: number, builds: number) => void
  /** The engine's slots: how many run a build, of how many. */
  readonly slots: (inUse: number, capacity: number) => void
  /**
   * A build this engine ran reached its final state (its outcome, queue wait and duration come from it).
   * `heldMs` is how long the engine held it, claimed ahead, before a slot started it: queue wait, though the
   * build's `startedAt` (its claim) counts it in the run.
   */
  readonly buildFinished: (build: Build, heldMs: number) => void
  /** Log lines stored for a build, and their bytes. */
  readonly logsStored: (lines: number, bytes: number) => void
  readonly deliveryAttempted: (result: DeliveryResult) => void
}

export class Metrics extends Context.Service<Metrics, MetricsShape>()("@kiln/core/Metrics") {}

/** Records nothing: the engine's default. */
export const none: MetricsShape = {
  claimed: () => {},
  slots: () => {},
  buildFinished: () => {},
  logsStored: () => {},
  deliveryAttempted: () => {}
}
