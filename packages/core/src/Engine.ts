/**
 * The engine (DESIGN.md §3, §8): claims queued builds up to its concurrency, runs each with the Runner,
 * batches its log lines into storage, heartbeats its leases, watches for cancel requests, enforces
 * timeouts, reaps expired leases, sweeps what crashed processes left behind (and stored archives no
 * version names), and shuts down gracefully.
 *
 * Every write a build makes carries its claim's `(owner, attempt)` fence, so once a lease is lost — the
 * process was paused, or a peer reaped it — nothing this process does can change the build again.
 */
import { Context, type Effect, Layer } from "effect"
import type { App } from "./App.ts"
import type { Build } from "./Build.ts"
import type { Limits } from "./Claim.ts"
import type { BuildId } from "./Id.ts"
import { makeEngine } from "./internal/engine.ts"
import type * as Retention from "./Retention.ts"
import type { EnvironmentVariable, Runner } from "./Runner.ts"
import type { SourceStore } from "./SourceStore.ts"
import type { Storage } from "./Storage.ts"
import type { RetrySchedule } from "./Webhook.ts"

/** How this process sends webhook deliveries; the addresses it may send to are `Webhook.Addresses`. */
export interface WebhookDeliveryOptions {
  /** How many deliveries this process sends at once. Default 16. */
  readonly concurrency?: number
  /** One attempt's time: connecting, the answer's headers and its body. Default 10 s. */
  readonly timeoutMs?: number
  /** The most of an answer's body read; the rest is not waited for. Default 64 KiB. */
  readonly maxResponseBytes?: number
  /** The waits between attempts. Default 12 attempts over about a day, with jitter. */
  readonly retrySchedule?: RetrySchedule
  /** How long a delivery stays leased to this process; past it another process may send it. Default 60 s. */
  readonly leaseMs?: number
  /** How often to look for due deliveries when no hint arrives (retries come due silently). Default 1 s. */
  readonly pollIntervalMs?: number
}

export interface EngineOptions {
  /**
   * Names this process in claims and on containers; unique per process start. At most
   * `BuildState.maxTextBytes` of UTF-8: a longer one fails the layer with a defect that says so.
   */
  readonly owner?: string
  /** How many builds this process runs at once. Default 2. */
  readonly concurrency?: number
  /**
   * The most queued builds this process claims ahead of its free slots, to start the moment a slot comes
   * free. It claims as many as its slots would start within a sixth of the lease, judged by how long its
   * recent runs took, so long builds are not held from other processes; a build that still waits after a
   * third of the lease, or at shutdown, is given back to the queue (`build.requeued`). Builds claimed ahead
   * count toward `limits` and show as running. 0 claims only into free slots. Default 4 × `concurrency`:
   * a claim's round trip on a busy database takes as long as several short runs, and with only
   * `concurrency` ahead the slots emptied while it was under way (dispatch 1,953 → 2,386 builds/s at 10).
   */
  readonly prefetch?: number
  /** Per-workspace and per-app caps on active builds, across every process sharing the storage. */
  readonly limits?: Limits
  /** How long a claim lasts without a heartbeat; heartbeats come every third of it. Default 30 s. */
  readonly leaseMs?: number
  /** How often to look for queued builds when no change notification arrives. Default 1 s. */
  readonly pollIntervalMs?: number
  /** How often to look for cancel requests on running builds, besides notifications. Default 500 ms. */
  readonly cancelPollMs?: number
  /** How often to reap expired leases (and then sweep their leftovers). Default 5 s. */
  readonly reapIntervalMs?: number
  /**
   * How often to remove stored archives that no app version names and that were stored longer ago than
   * the source store's `archiveGracePeriod`; once at start, then at this interval. Every process may
   * sweep: a removal re-checks that the archive is still stale. Default 1 hour.
   */
  readonly archiveSweepIntervalMs?: number
  /** On shutdown, how long running builds may finish before they are cancelled. Default 30 s. */
  readonly shutdownGraceMs?: number
  /** The most log lines written to storage at once. Default 500. */
  readonly logBatchLines?: number
  /**
   * How long log lines wait for more before they are written, unless a full batch is queued or the build
   * is ending: a short build's lines and state changes then go to storage as one write. Default 10 ms.
   */
  readonly logFlushMs?: number
  /** Sends webhook deliveries, unless `false` (then another process sharing the storage must). Default on. */
  readonly webhooks?: WebhookDeliveryOptions | false
  /**
   * What to keep of builds, logs, events and images (`Retention`), applied at start and then on its
   * schedule. Default: everything is kept. Invalid settings end the layer with a defect naming the fault.
   */
  readonly retention?: Retention.Options | undefined
  /** Variables a build's commands get; secret values are redacted from its log. Default none. */
  readonly environment?: (build: Build, app: App) => Effect.Effect<ReadonlyArray<EnvironmentVariable>>
}

export interface EngineShape {
  readonly owner: string
  /** The builds this process is running now. */
  readonly running: Effect.Effect<ReadonlyArray<BuildId>>
}

export class Engine extends Context.Service<Engine, EngineShape>()("@kiln/core/Engine") {}

/**
 * Starts the engine for the life of the layer: closing the layer (SIGTERM under `NodeRuntime.runMain`)
 * stops claiming, lets running builds finish within `shutdownGraceMs`, then cancels them with reason
 * "shutdown".
 */
export const layer = (
  options: EngineOptions = {}
): Layer.Layer<Engine, never, Storage | Runner | SourceStore> => Layer.effect(Engine, makeEngine(options))
