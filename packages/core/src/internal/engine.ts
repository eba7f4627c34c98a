/**
 * The engine put together: its parts under `engine/`, started in order and stopped gracefully. See
 * `Engine.ts`.
 */
import { hostname } from "node:os"
import { DateTime, Effect, Option, Queue, Result, type Scope } from "effect"
import * as Access from "../Access.ts"
import type { Build } from "../Build.ts"
import * as BuildState from "../BuildState.ts"
import type { EngineOptions, EngineShape } from "../Engine.ts"
import * as Metrics from "../Metrics.ts"
import * as Retention from "../Retention.ts"
import { Runner } from "../Runner.ts"
import { SourceStore } from "../SourceStore.ts"
import { Storage } from "../Storage.ts"
import * as Tracing from "../Tracing.ts"
import * as Webhook from "../Webhook.ts"
import { archiveSweepLoop } from "./engine/archiveSweep.ts"
import { runBuild } from "./engine/buildRun.ts"
import { makeBuildSetup } from "./engine/buildSetup.ts"
import { followChanges, pollCancels } from "./engine/changeWatch.ts"
import { makeClaimLoop } from "./engine/claimLoop.ts"
import { reapLoop, sweepLeftovers } from "./engine/reaper.ts"
import { retentionLoop } from "./engine/retention.ts"
import { makeRunningBuilds } from "./engine/runningBuilds.ts"
import { retryTransient } from "./engine/storageRetry.ts"
import { deliveryLoop } from "./engine/webhookDelivery.ts"
import { defaultSchedule } from "./webhooks/retrySchedule.ts"

/** Names a process in claims and on containers: unique per process start. */
export const defaultOwner = (): string =>
  `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`

export const makeEngine = (
  options: EngineOptions
): Effect.Effect<EngineShape, never, Storage | Runner | SourceStore | Scope.Scope> =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const runner = yield* Runner
    const sources = yield* SourceStore
    const owner = options.owner ?? defaultOwner()
    // Storages index a build's owner, and PostgreSQL refuses an index entry over about 2.7 KB: an owner
    // that long would fail every claim, so it fails the engine's start instead.
    const ownerBytes = new TextEncoder().encode(owner).length
    if (ownerBytes === 0 || ownerBytes > BuildState.maxTextBytes) {
      return yield* Effect.die(
        new Error(`engine owner: expected 1 to ${BuildState.maxTextBytes} bytes of UTF-8, got ${ownerBytes}`)
      )
    }
    const concurrency = options.concurrency ?? 2
    const metrics = Option.getOrElse(yield* Effect.serviceOption(Metrics.Metrics), () => Metrics.none)
    const traced = yield* Tracing.active
    const leaseMs = options.leaseMs ?? 30_000
    const runInput = {
      storage,
      runner,
      sources,
      owner,
      leaseMs,
      logBatchLines: options.logBatchLines ?? 500,
      logFlushMs: options.logFlushMs ?? 10,
      metrics,
      traced,
      setUp: yield* makeBuildSetup({
        storage,
        environment: options.environment ?? (() => Effect.succeed([]))
      })
    }
    // Wakes the claim loop before its poll interval is up: a build was queued, or a slot came free.
    const wake = yield* Queue.sliding<void>(1)
    const signal = Effect.asVoid(Queue.offer(wake, undefined))
    // A build claimed ahead and not started goes back to the queue (or stops, with its line, if a cancel
    // was requested meanwhile); if its lease is gone, it is not ours.
    const giveBack = (build: Build) =>
      Effect.flatMap(DateTime.now, (at) =>
        retryTransient(storage.transition(build.id, { _tag: "Release", at, owner, attempt: build.attempt }))
      ).pipe(
        Effect.catch((error) =>
          Effect.logWarning(`could not give build ${build.id} back to the queue`, error)
        ),
        Effect.asVoid
      )
    const builds = makeRunningBuilds({
      run: (build, stop, release, waitedMs) => runBuild(runInput, build, stop, release, waitedMs),
      holdMs: Math.floor(leaseMs / 3),
      context: yield* Effect.context<never>(),
      concurrency,
      // A slot came free: the gauge says so before the claim loop fills it again.
      onRelease: Effect.andThen(
        Effect.sync(() => metrics.slots(builds.size(), concurrency)),
        signal
      ),
      giveBack
    })
    const claims = yield* makeClaimLoop({
      storage,
      owner,
      leaseMs,
      concurrency,
      prefetch: options.prefetch ?? 4 * concurrency,
      giveBack,
      limits: options.limits,
      pollIntervalMs: options.pollIntervalMs ?? 1000,
      builds,
      wake,
      metrics,
      traced
    })
    const watch = { storage, builds, wake: signal, cancelPollMs: options.cancelPollMs ?? 500 }

    yield* sweepLeftovers({ storage, runner, builds })
    yield* followChanges(watch)
    yield* Effect.forkScoped(pollCancels(watch))
    yield* Effect.forkScoped(
      reapLoop({ storage, runner, builds, reapIntervalMs: options.reapIntervalMs ?? 5000 })
    )
    yield* Effect.forkScoped(
      archiveSweepLoop({ storage, sources, intervalMs: options.archiveSweepIntervalMs ?? 3_600_000 })
    )
    if (options.retention !== undefined) {
      const { pinnedImages: _, ...settings } = options.retention
      const checked = Retention.validate(settings)
      if (Result.isFailure(checked)) return yield* Effect.die(new Error(checked.failure))
      if (!Retention.isEmpty(settings)) {
        yield* Effect.forkScoped(retentionLoop({ storage, runner, owner, options: options.retention }))
      }
    }
    yield* Effect.forkScoped(claims.run)
    if (options.webhooks !== false) {
      const webhooks = options.webhooks ?? {}
      yield* deliveryLoop({
        storage,
        owner,
        policy: yield* Webhook.policy,
        concurrency: webhooks.concurrency ?? 16,
        leaseMs: webhooks.leaseMs ?? 60_000,
        timeoutMs: webhooks.timeoutMs ?? 10_000,
        maxResponseBytes: webhooks.maxResponseBytes ?? 64 * 1024,
        retrySchedule: webhooks.retrySchedule ?? defaultSchedule,
        pollIntervalMs: webhooks.pollIntervalMs ?? 1000,
        metrics
      })
    }
    // Registered last, so it runs first when the layer closes: before the loops are interrupted.
    yield* Effect.addFinalizer(() =>
      claims.stop.pipe(
        Effect.andThen(
          builds.shutdown(options.shutdownGraceMs ?? 30_000, (id) =>
            storage.requestCancel(Access.all, id, "shutdown").pipe(Effect.ignore)
          )
        )
      )
    )
    yield* Effect.logInfo(`engine ${owner} started: concurrency ${concurrency}`)

    return { owner, running: Effect.sync(builds.runningIds) }
  })
