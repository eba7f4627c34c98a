/**
 * The engine's loops: claim, run, heartbeat, cancel watch, reap, sweep, shutdown. See `Engine.ts`.
 */
import { hostname } from "node:os"
import {
  Cache,
  Cause,
  Clock,
  DateTime,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Option,
  Queue,
  Ref,
  Schedule,
  Stream
} from "effect"
import * as Access from "../Access.ts"
import type { Build, BuildStep } from "../Build.ts"
import type { BuildEvent, Fence } from "../BuildState.ts"
import type { Change } from "../Change.ts"
import type { EngineOptions, EngineShape } from "../Engine.ts"
import type { AppId, AppVersionId, BuildId, TriggerId } from "../Id.ts"
import * as OrderBy from "../OrderBy.ts"
import type { ListQuery } from "../Query.ts"
import * as Redactor from "../Redactor.ts"
import { type EnvironmentVariable, Runner, type RunnerEvent } from "../Runner.ts"
import type { RunnerError } from "../RunnerError.ts"
import * as Secrets from "../Secrets.ts"
import { SourceStore } from "../SourceStore.ts"
import { Storage } from "../Storage.ts"
import * as Trigger from "../Trigger.ts"
import { makeBuildWriter } from "./engine/buildWriter.ts"
import { retryTransient } from "./engine/storageRetry.ts"

/** How a run ended, as decided by whichever came first. */
type Outcome =
  | {
      readonly _tag: "Completed"
      readonly artifact: { readonly imageTag: string; readonly imageDigest: string | null } | null
    }
  | { readonly _tag: "Failed"; readonly error: RunnerError | string }
  | { readonly _tag: "Cancelled" }
  | { readonly _tag: "TimedOut" }
  | { readonly _tag: "LeaseLost" }

interface Running {
  readonly stop: Deferred.Deferred<Outcome>
  readonly fiber: Fiber.Fiber<void>
}

/** Names a process in claims and on containers: unique per process start. */
export const defaultOwner = (): string =>
  `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`

const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))

const formatDuration = (ms: number) =>
  ms % 60_000 === 0 ? `${ms / 60_000} min` : ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`

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
    const batch = options.logBatchLines ?? 500
    const flushMs = options.logFlushMs ?? 10
    const environment = options.environment ?? (() => Effect.succeed([]))
    // A build holds one of the `concurrency` slots while the runner has it; once the runner has stopped
    // and cleaned up, it only writes its last log lines and final state, and its slot goes to the next.
    /**
     * The variables of the trigger that made a build, secret values opened with the secrets key; a
     * trigger deleted since still counts, as the build was made with it.
     */
    const triggerVariables = (build: Build) =>
      Effect.gen(function* () {
        const none = { variables: [] as Array<EnvironmentVariable>, problem: undefined as string | undefined }
        const id = (build.triggerMetadata as { readonly triggerId?: unknown } | null)?.triggerId
        if (typeof id !== "string") return none
        const trigger = yield* storage.getTrigger(Access.all, id as TriggerId).pipe(
          Effect.map(Option.some),
          Effect.catchTag("NotFound", () => Effect.succeed(Option.none())),
          Effect.orDie
        )
        if (Option.isNone(trigger)) return none
        const { key } = yield* Secrets.SecretsKey
        const variables: Array<EnvironmentVariable> = []
        for (const variable of trigger.value.environment) {
          if (variable.value === undefined) continue
          const value = variable.secret
            ? key === undefined
              ? undefined
              : Secrets.open(key, variable.value)
            : variable.value
          if (value === undefined) {
            return {
              variables: [],
              problem: `the secret ${variable.name} could not be opened: KILN_SECRETS_KEY must be the key it was stored with`
            }
          }
          variables.push({ name: variable.name, value, secret: variable.secret })
        }
        return { variables, problem: undefined }
      })
    const running = new Map<BuildId, Running>()
    const finishing = new Map<BuildId, Fiber.Fiber<void>>()
    // Storage never changes an app, nor a version once it is ready to build: each is read once. A failed
    // read is not kept, so the next build asks again.
    const kept = (exit: Exit.Exit<unknown, unknown>) =>
      Exit.isSuccess(exit) ? Duration.infinity : Duration.zero
    const apps = yield* Cache.makeWith((id: AppId) => storage.getApp(Access.all, id), {
      capacity: 1000,
      timeToLive: kept
    })
    const versions = yield* Cache.makeWith((id: AppVersionId) => storage.getAppVersion(Access.all, id), {
      capacity: 1000,
      timeToLive: kept
    })
    const stopping = yield* Ref.make(false)
    const wake = yield* Queue.sliding<void>(1)
    const progress = (message: string, build: Build, extra: Record<string, unknown> = {}) =>
      Effect.logInfo(message).pipe(
        Effect.annotateLogs({ buildId: build.id, appId: build.entityId, ...extra })
      )

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

    const runBuild = (build: Build, stop: Deferred.Deferred<Outcome>, release: Effect.Effect<void>) =>
      Effect.gen(function* () {
        const fence: Fence = { owner, attempt: build.attempt }
        const leaseLost = Deferred.succeed(stop, { _tag: "LeaseLost" }).pipe(Effect.asVoid)
        // One after the other: both are almost always cached, and a fiber each would cost more.
        const stored = yield* Cache.get(apps, build.entityId)
        const version = yield* Cache.get(versions, build.appVersionId)
        // A build made by a trigger runs with the trigger's commands, root directory and caching.
        const app = { ...stored, build: Trigger.settingsFor(stored.build, build.triggerMetadata) }
        const fromTrigger = yield* triggerVariables(build)
        const own = yield* environment(build, app)
        // The host's variables win over a trigger's of the same name.
        const variables = [
          ...fromTrigger.variables.filter((v) => !own.some((o) => o.name === v.name)),
          ...own
        ]
        const redactor = Redactor.make(variables.filter((v) => v.secret).map((v) => v.value))
        const log = yield* makeBuildWriter({
          storage,
          buildId: build.id,
          fence,
          batchLines: batch,
          flushMs,
          redactor,
          onLeaseLost: leaseLost,
          onWriteFailed: Deferred.succeed(stop, {
            _tag: "Failed",
            error: "the build log could not be stored"
          }).pipe(Effect.asVoid)
        })
        const steps = new Map<number, BuildStep>()
        const started = yield* Ref.make(false)
        let artifact: { imageTag: string; imageDigest: string | null } | null = null

        const handled = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>) =>
          effect.pipe(
            Effect.catchTag("LeaseLost" as never, () => leaseLost),
            Effect.catch((error) => Effect.logError("storage write failed", error)),
            Effect.asVoid
          )
        const write = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>) =>
          handled(retryTransient(effect))
        const recordStep = (step: BuildStep) =>
          Effect.sync(() => steps.set(step.index, step)).pipe(
            Effect.andThen(write(storage.recordStep(build.id, fence, step)))
          )

        const onEvent = (event: Exclude<RunnerEvent, { readonly _tag: "Log" }>) =>
          Effect.gen(function* () {
            switch (event._tag) {
              case "StepStarted":
                yield* progress(`step ${event.name}`, build, { step: event.index })
                return yield* recordStep({
                  index: event.index,
                  name: event.name,
                  status: "running",
                  startedAt: yield* now,
                  completedAt: null,
                  exitCode: null,
                  error: null
                })
              case "StepFinished": {
                const step = steps.get(event.index)
                return yield* recordStep({
                  index: event.index,
                  name: event.name,
                  status: event.status,
                  startedAt: step?.startedAt ?? (yield* now),
                  completedAt: yield* now,
                  exitCode: event.exitCode,
                  error: null
                })
              }
              case "Artifact":
                artifact = { imageTag: event.imageTag, imageDigest: event.imageDigest }
                return
            }
          })

        // Events arrive in chunks: runs of log lines are queued together, other events in order between them.
        const onEvents = (events: ReadonlyArray<RunnerEvent>) =>
          Effect.gen(function* () {
            // Queued, not awaited: the run goes on while the writer stores it.
            if (!(yield* Ref.getAndSet(started, true))) {
              yield* log.transition({ _tag: "Started", at: yield* now, ...fence }, handled)
            }
            let lines: Array<Extract<RunnerEvent, { readonly _tag: "Log" }>> = []
            for (const event of events) {
              if (event._tag === "Log") {
                lines.push(event)
                continue
              }
              if (lines.length > 0) yield* log.addAll(lines)
              lines = []
              yield* onEvent(event)
            }
            if (lines.length > 0) yield* log.addAll(lines)
          })

        yield* log.add(
          "system",
          null,
          `[kiln] build #${build.sequenceNumber} of ${app.handle} claimed by ${owner}`
        )
        yield* progress("build started", build, { owner })
        const run = runner
          .run({
            buildId: build.id,
            workspaceId: build.workspaceId,
            owner,
            attempt: build.attempt,
            app,
            version,
            context: sources.context(version, app.build.rootDirectory),
            environment: variables
          })
          .pipe(
            Stream.runForEachArray(onEvents),
            Effect.matchEffect({
              onSuccess: () => Deferred.succeed(stop, { _tag: "Completed", artifact }),
              onFailure: (error) => Deferred.succeed(stop, { _tag: "Failed", error })
            })
          )
        // A secret the engine cannot open fails the build before anything runs without it.
        const runFiber = yield* Effect.forkChild(
          fromTrigger.problem === undefined
            ? run
            : Deferred.succeed(stop, { _tag: "Failed", error: fromTrigger.problem })
        )
        const timeoutMs = app.build.timeoutMs
        const timer = yield* Effect.forkChild(
          Effect.sleep(`${timeoutMs} millis`).pipe(
            Effect.andThen(Deferred.succeed(stop, { _tag: "TimedOut" }))
          )
        )
        const heartbeat = yield* Effect.forkChild(
          Effect.gen(function* () {
            const renewed = yield* storage.heartbeat(build.id, fence, leaseMs).pipe(
              Effect.catchTag("LeaseLost", () => leaseLost.pipe(Effect.as(undefined))),
              Effect.catch((error) => Effect.logWarning("heartbeat failed", error).pipe(Effect.as(undefined)))
            )
            if (renewed?.cancelRequestedAt !== null && renewed !== undefined) {
              yield* Deferred.succeed(stop, { _tag: "Cancelled" })
            }
            // The claim has just taken the lease: the first renewal is due a third of the way through it.
          }).pipe(Effect.delay(`${Math.max(50, Math.floor(leaseMs / 3))} millis`), Effect.forever)
        )

        const outcome = yield* Deferred.await(stop)
        // Whatever ended the run, the runner stops and cleans up before anything else is written.
        yield* Fiber.interrupt(runFiber)
        yield* Fiber.interrupt(timer)
        yield* release
        if (outcome._tag === "LeaseLost") {
          yield* Fiber.interrupt(heartbeat)
          return yield* Effect.logWarning("lease lost: stopped without writing").pipe(
            Effect.annotateLogs({ buildId: build.id })
          )
        }

        const at = yield* now
        const closing: Record<Exclude<Outcome["_tag"], "LeaseLost">, BuildStep["status"]> = {
          Completed: "succeeded",
          Failed: "failed",
          Cancelled: "cancelled",
          TimedOut: "cancelled"
        }
        for (const step of steps.values()) {
          if (step.status === "running") {
            yield* recordStep({ ...step, status: closing[outcome._tag], completedAt: at })
          }
        }
        let event: BuildEvent
        switch (outcome._tag) {
          case "Completed":
            yield* log.add(
              "system",
              null,
              `[kiln] completed${outcome.artifact ? `: ${outcome.artifact.imageTag}` : ""}`
            )
            event = {
              _tag: "Succeeded",
              at,
              ...fence,
              imageTag: outcome.artifact?.imageTag ?? null,
              imageDigest: outcome.artifact?.imageDigest ?? null
            }
            break
          case "Failed": {
            const error = typeof outcome.error === "string" ? outcome.error : outcome.error.message
            yield* log.add("system", null, `[kiln] failed: ${error}`)
            event = { _tag: "Failed", at, ...fence, error }
            break
          }
          case "TimedOut": {
            const error = `timed out after ${formatDuration(timeoutMs)}`
            yield* log.add("system", null, `[kiln] ${error}`)
            event = { _tag: "TimedOut", at, ...fence, error }
            break
          }
          case "Cancelled": {
            const current = yield* storage.getBuild(Access.all, build.id).pipe(Effect.option)
            const reason = Option.getOrUndefined(current)?.cancelReason
            yield* log.add("system", null, `[kiln] cancelled${reason ? `: ${reason}` : ""}`)
            event = { _tag: "Stopped", at, ...fence }
            break
          }
        }
        // The final state goes with the last lines, written after everything queued before them; the
        // lease is renewed until then.
        yield* log.transition(
          event,
          Effect.matchEffect({
            onSuccess: (final) => progress(`build ${final.status}`, build),
            // The lease lapses and a reaper records the build as lost: it never stays running.
            onFailure: (error) => Effect.logError("could not write the final state", error)
          })
        )
        yield* log.close
        yield* Fiber.interrupt(heartbeat)
      }).pipe(
        Effect.scoped,
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.logError("build crashed in the engine", cause)
        )
      )

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
            Effect.andThen(runBuild(build, stop, release)),
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
        yield* progress(`build reaped: ${build.outcome}`, build, { owner: build.owner })
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
