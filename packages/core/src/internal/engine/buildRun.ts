/**
 * One claimed build, run: the runner's stream becomes steps, log lines and an artifact; whichever comes
 * first of the run's end, a cancel request, the timeout or a lost lease decides the outcome; then the runner
 * stops and cleans up, and the last lines and the final state are written.
 */
import { Cause, DateTime, Deferred, Effect, Fiber, Option } from "effect"
import * as Access from "../../Access.ts"
import type { Build } from "../../Build.ts"
import type { Fence } from "../../BuildState.ts"
import type { MetricsShape } from "../../Metrics.ts"
import type { RunnerShape } from "../../Runner.ts"
import type { SourceStoreShape } from "../../SourceStore.ts"
import type { StorageShape } from "../../Storage.ts"
import { spanIf } from "../spans.ts"
import type { SetUp } from "./buildSetup.ts"
import { makeBuildWriter } from "./buildWriter.ts"
import { heartbeat } from "./heartbeat.ts"
import { closingStatus, conclusion, type Outcome } from "./outcome.ts"
import { logProgress } from "./progress.ts"
import { makeRunRecorder } from "./runRecorder.ts"

export interface BuildRunInput {
  readonly storage: Pick<
    StorageShape,
    "appendLogs" | "appendAndTransition" | "recordStep" | "heartbeat" | "getBuild"
  >
  readonly runner: Pick<RunnerShape, "run">
  readonly sources: Pick<SourceStoreShape, "context">
  readonly owner: string
  readonly leaseMs: number
  readonly logBatchLines: number
  readonly logFlushMs: number
  readonly metrics: MetricsShape
  /** The run, and its steps, in spans (`Tracing`). */
  readonly traced: boolean
  readonly setUp: SetUp
}

/**
 * Runs a build until `stop` is decided, from within (the run ended, the timeout, a lost lease) or from
 * outside (a cancel request). `release` gives the build's slot back once the runner has stopped and cleaned
 * up: all that is left then is writing the last lines and the final state.
 */
export const runBuild = (
  input: BuildRunInput,
  build: Build,
  stop: Deferred.Deferred<Outcome>,
  release: Effect.Effect<void>,
  waitedMs: number
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const { storage, owner } = input
    const fence: Fence = { owner, attempt: build.attempt }
    // The first outcome decided is the one: later ones change nothing.
    const end = (outcome: Outcome) => Effect.asVoid(Deferred.succeed(stop, outcome))
    const leaseLost = end({ _tag: "LeaseLost" })
    const { app, version, variables, redactor, problem } = yield* input.setUp(build)
    const log = yield* makeBuildWriter({
      storage,
      buildId: build.id,
      fence,
      batchLines: input.logBatchLines,
      flushMs: input.logFlushMs,
      redactor,
      onLeaseLost: leaseLost,
      onWriteFailed: end({ _tag: "Failed", error: "the build log could not be stored" }),
      metrics: input.metrics
    })
    const recorder = makeRunRecorder({
      storage,
      build,
      fence,
      log,
      onLeaseLost: leaseLost,
      traced: input.traced
    })

    yield* log.add(
      "system",
      null,
      `[kiln] build #${build.sequenceNumber} of ${app.handle} claimed by ${owner}`
    )
    yield* logProgress("build started", build, { owner })
    const run = recorder
      .record(
        input.runner.run({
          buildId: build.id,
          workspaceId: build.workspaceId,
          owner,
          attempt: build.attempt,
          app,
          version,
          context: input.sources.context(version, app.build.rootDirectory),
          environment: variables
        })
      )
      .pipe(
        Effect.matchEffect({
          onSuccess: (artifact) => end({ _tag: "Completed", artifact }),
          onFailure: (error) => end({ _tag: "Failed", error })
        })
      )
    // A secret the engine cannot open fails the build before anything runs without it.
    const runFiber = yield* Effect.forkChild(
      problem === undefined ? run : end({ _tag: "Failed", error: problem })
    )
    const timeoutMs = app.build.timeoutMs
    const timer = yield* Effect.forkChild(
      Effect.sleep(`${timeoutMs} millis`).pipe(Effect.andThen(end({ _tag: "TimedOut" })))
    )
    const lease = yield* Effect.forkChild(
      heartbeat({
        storage,
        buildId: build.id,
        fence,
        leaseMs: input.leaseMs,
        onLeaseLost: leaseLost,
        onCancelRequested: end({ _tag: "Cancelled" }),
        waitedMs
      })
    )

    const outcome = yield* Deferred.await(stop)
    // Whatever ended the run, the runner stops and cleans up before anything else is written.
    yield* Fiber.interrupt(runFiber)
    yield* Fiber.interrupt(timer)
    yield* release
    if (outcome._tag === "LeaseLost") {
      yield* Fiber.interrupt(lease)
      return yield* Effect.logWarning("lease lost: stopped without writing")
    }

    const at = yield* DateTime.now
    yield* recorder.closeSteps(closingStatus[outcome._tag], at)
    // Read for a cancel only: its reason goes into the last line.
    const current =
      outcome._tag === "Cancelled"
        ? yield* Effect.option(storage.getBuild(Access.all, build.id))
        : Option.none()
    const cancelReason = Option.match(current, {
      onNone: () => null,
      onSome: (stored) => stored.cancelReason
    })
    const { line, event } = conclusion(outcome, fence, at, { timeoutMs, cancelReason })
    yield* log.add("system", null, line)
    // The final state goes with the last lines, written after everything queued before them; the lease is
    // renewed until then.
    yield* log.transition(
      event,
      Effect.matchEffect({
        onSuccess: (final) =>
          Effect.andThen(
            Effect.sync(() => input.metrics.buildFinished(final, waitedMs)),
            logProgress(`build ${final.status}`, build)
          ),
        // The lease lapses and a reaper records the build as lost: it never stays running.
        onFailure: (error) => Effect.logError("could not write the final state", error)
      })
    )
    yield* log.close
    yield* Fiber.interrupt(lease)
  }).pipe(
    Effect.scoped,
    Effect.catchCause((cause) =>
      Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.logError("build crashed in the engine", cause)
    ),
    spanIf(input.traced, "kiln.build.run", { "kiln.build_id": build.id, "kiln.attempt": build.attempt }),
    // Every line logged while the build runs names it, from the fibers it forks too.
    Effect.annotateLogs({ buildId: build.id })
  )
