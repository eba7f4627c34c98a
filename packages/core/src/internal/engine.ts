/**
 * The engine's loops: claim, run, heartbeat, cancel watch, reap, sweep, shutdown. See `Engine.ts`.
 */
import { hostname } from "node:os"
import { Deferred, Effect, Exit, Fiber, Queue, Ref, Schedule, Stream } from "effect"
import * as Access from "../Access.ts"
import type { Build } from "../Build.ts"
import type { Change } from "../Change.ts"
import type { EngineOptions, EngineShape } from "../Engine.ts"
import type { BuildId } from "../Id.ts"
import * as OrderBy from "../OrderBy.ts"
import type { ListQuery } from "../Query.ts"
import { Runner } from "../Runner.ts"
import { SourceStore } from "../SourceStore.ts"
import { Storage } from "../Storage.ts"
import { type BuildRunInput, runBuild } from "./engine/buildRun.ts"
import { makeBuildSetup } from "./engine/buildSetup.ts"
import type { Outcome } from "./engine/outcome.ts"
import { logProgress } from "./engine/progress.ts"

interface Running {
  readonly stop: Deferred.Deferred<Outcome>
  readonly fiber: Fiber.Fiber<void>
}

/** Names a process in claims and on containers: unique per process start. */
export const defaultOwner = (): string =>
  `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`

/** Active builds: claimed and not stopped, as a filter the query language understands. */
const activeQuery = (ids?: ReadonlyArray<BuildId>): ListQuery => ({
  filter: {
    _tag: "And",
    filters: [
      { _tag: "In", field: "phase", values: ["initializing", "running"], negate: false },
      ...(ids === undefined ? [] : [{ _tag: "In" as const, field: "id", values: ids, negate: false }])
    ]
  },
  orderBy: OrderBy.complete(OrderBy.defaultOrder),
  limit: 10_000,
  cursor: undefined
})

/** Archive versions that name one of these archives. */
const archivesQuery = (sha256s: ReadonlyArray<string>): ListQuery => ({
  filter: {
    _tag: "And",
    filters: [
      { _tag: "In", field: "sourceType", values: ["archive"], negate: false },
      { _tag: "In", field: "commitSha", values: sha256s, negate: false }
    ]
  },
  orderBy: OrderBy.complete(OrderBy.defaultOrder),
  limit: sha256s.length,
  cursor: undefined
})

export const makeEngine = (options: EngineOptions) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const runner = yield* Runner
    const sources = yield* SourceStore
    const owner = options.owner ?? defaultOwner()
    const concurrency = options.concurrency ?? 2
    const leaseMs = options.leaseMs ?? 30_000
    // A build holds one of the `concurrency` slots while the runner has it; once the runner has stopped
    // and cleaned up, it only writes its last log lines and final state, and its slot goes to the next.
    const running = new Map<BuildId, Running>()
    const finishing = new Map<BuildId, Fiber.Fiber<void>>()
    const runInput: BuildRunInput = {
      storage,
      runner,
      sources,
      owner,
      leaseMs,
      logBatchLines: options.logBatchLines ?? 500,
      logFlushMs: options.logFlushMs ?? 10,
      setUp: yield* makeBuildSetup({
        storage,
        environment: options.environment ?? (() => Effect.succeed([]))
      })
    }
    const stopping = yield* Ref.make(false)
    const wake = yield* Queue.sliding<void>(1)

    /** Sweeps what the runner holds for builds that are no longer active anywhere. */
    const sweep = Effect.gen(function* () {
      // Asked after the runner has listed its resources, so a claim made meanwhile is seen.
      const activeAmong = (ids: ReadonlyArray<string>) =>
        ids.length === 0
          ? Effect.succeed(new Set<string>())
          : storage.listBuilds(Access.all, activeQuery(ids as ReadonlyArray<BuildId>)).pipe(
              Effect.map((result) => new Set<string>([...result.rows.map((b) => b.id), ...running.keys()])),
              // Unsure is active: a sweep that cannot ask removes nothing.
              Effect.orElseSucceed(() => new Set(ids))
            )
      const removed = yield* runner.sweep(activeAmong)
      if (removed.length > 0) {
        yield* Effect.logInfo(`swept ${removed.length} leftovers`).pipe(
          Effect.annotateLogs({ resources: removed.map((r) => `${r.kind}:${r.id.slice(0, 12)}`).join(" ") })
        )
      }
    }).pipe(Effect.catch((error) => Effect.logWarning("sweep failed", error)))

    /** Removes stored archives that no version names (the source store keeps fresh ones). */
    const sweepArchives = Effect.gen(function* () {
      // Many versions may name one archive, so a page of answers may not reach every name: ask again about
      // the names not found yet until a page comes back short. Each full page finds at least one name.
      const referencedAmong = (sha256s: ReadonlyArray<string>) =>
        Effect.gen(function* () {
          const found = new Set<string>()
          let asking = sha256s
          while (asking.length > 0) {
            const page = yield* storage.listAppVersions(Access.all, archivesQuery(asking))
            for (const version of page.rows) if (version.commitSha !== null) found.add(version.commitSha)
            if (page.rows.length < asking.length) return found
            asking = asking.filter((sha256) => !found.has(sha256))
          }
          return found
        }).pipe(Effect.orElseSucceed(() => new Set(sha256s)))
      const removed = yield* sources.sweepArchives(referencedAmong)
      if (removed.length > 0) {
        yield* Effect.logInfo(`removed ${removed.length} archives no version names`).pipe(
          Effect.annotateLogs({ archives: removed.map((sha256) => sha256.slice(0, 8)).join(" ") })
        )
      }
    }).pipe(
      Effect.catch((error) => Effect.logWarning("archive sweep failed", error)),
      Effect.repeat(Schedule.spaced(`${options.archiveSweepIntervalMs ?? 3_600_000} millis`))
    )

    // -----------------------------------------------------------------------------------------------
    // One build
    // -----------------------------------------------------------------------------------------------

    const start = (build: Build) =>
      Effect.gen(function* () {
        const stop = yield* Deferred.make<Outcome>()
        // The build starts once it is registered, so its release always finds its entry.
        const registered = yield* Deferred.make<void>()
        const release = Effect.sync(() => {
          const entry = running.get(build.id)
          if (entry === undefined) return
          running.delete(build.id)
          finishing.set(build.id, entry.fiber)
        }).pipe(Effect.andThen(Queue.offer(wake, undefined)))
        const fiber = yield* Effect.forkDetach(
          Deferred.await(registered).pipe(
            Effect.andThen(runBuild(runInput, build, stop, release)),
            Effect.ensuring(release.pipe(Effect.andThen(Effect.sync(() => finishing.delete(build.id)))))
          )
        )
        running.set(build.id, { stop, fiber })
        yield* Deferred.succeed(registered, undefined)
      })

    // -----------------------------------------------------------------------------------------------
    // Loops
    // -----------------------------------------------------------------------------------------------

    const claimLoop = Effect.gen(function* () {
      while (!(yield* Ref.get(stopping))) {
        const free = concurrency - running.size
        let claimed: ReadonlyArray<Build> = []
        if (free > 0) {
          claimed = yield* storage
            .claimNext({ owner, leaseMs, max: free, limits: options.limits })
            .pipe(Effect.catch((error) => Effect.logWarning("claim failed", error).pipe(Effect.as([]))))
          if (yield* Ref.get(stopping)) return
          for (const build of claimed) yield* start(build)
        }
        // A full claim may leave more work queued: look again at once.
        if (free > 0 && claimed.length === free) continue
        yield* Queue.take(wake).pipe(
          Effect.timeout(`${options.pollIntervalMs ?? 1000} millis`),
          Effect.ignore
        )
      }
    })

    const onChange = (change: Change) =>
      Effect.gen(function* () {
        if (change._tag !== "BuildChanged") return
        if (change.phase === "queued") yield* Queue.offer(wake, undefined)
        const mine = running.get(change.buildId)
        if (mine !== undefined && change.cancelRequested)
          yield* Deferred.succeed(mine.stop, { _tag: "Cancelled" })
      })

    // Notifications are a hint; this poll is the truth for processes that share storage without them.
    const cancelPoll = Effect.gen(function* () {
      if (running.size === 0) return
      const result = yield* storage.listBuilds(Access.all, activeQuery([...running.keys()]))
      for (const build of result.rows) {
        if (build.cancelRequestedAt !== null) {
          const mine = running.get(build.id)
          if (mine !== undefined) yield* Deferred.succeed(mine.stop, { _tag: "Cancelled" })
        }
      }
    }).pipe(
      Effect.catch((error) => Effect.logWarning("cancel poll failed", error)),
      Effect.repeat(Schedule.spaced(`${options.cancelPollMs ?? 500} millis`))
    )

    const reapLoop = Effect.gen(function* () {
      const reaped = yield* storage.reapExpired()
      for (const build of reaped)
        yield* logProgress(`build reaped: ${build.outcome}`, build, { owner: build.owner })
      if (reaped.length > 0) yield* sweep
    }).pipe(
      Effect.catch((error) => Effect.logWarning("reap failed", error)),
      Effect.repeat(Schedule.spaced(`${options.reapIntervalMs ?? 5000} millis`))
    )

    const shutdown = Effect.gen(function* () {
      yield* Ref.set(stopping, true)
      yield* Queue.offer(wake, undefined)
      const fibers = [...running.values()].map((r) => r.fiber).concat([...finishing.values()])
      if (fibers.length === 0) return
      yield* Effect.logInfo(`shutting down: waiting for ${fibers.length} running builds`)
      const finished = yield* Fiber.awaitAll(fibers).pipe(
        Effect.timeout(`${options.shutdownGraceMs ?? 30_000} millis`),
        Effect.exit
      )
      if (Exit.isSuccess(finished)) return
      for (const [id, build] of running) {
        yield* storage.requestCancel(Access.all, id, "shutdown").pipe(Effect.ignore)
        yield* Deferred.succeed(build.stop, { _tag: "Cancelled" })
      }
      yield* Fiber.awaitAll([...running.values()].map((r) => r.fiber).concat([...finishing.values()]))
    })

    yield* sweep
    const changes = yield* storage.changes.pipe(
      Effect.catch((error) =>
        Effect.logWarning("no change notifications: polling only", error).pipe(Effect.as(Stream.empty))
      )
    )
    yield* Effect.forkScoped(Stream.runForEach(changes, onChange))
    yield* Effect.forkScoped(cancelPoll)
    yield* Effect.forkScoped(reapLoop)
    yield* Effect.forkScoped(sweepArchives)
    yield* Effect.forkScoped(claimLoop)
    // Registered last, so it runs first when the layer closes: before the loops are interrupted.
    yield* Effect.addFinalizer(() => shutdown)
    yield* Effect.logInfo(`engine ${owner} started: concurrency ${concurrency}`)

    return {
      owner,
      running: Effect.sync(() => [...running.keys()])
    } satisfies EngineShape
  })
