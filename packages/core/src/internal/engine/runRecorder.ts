/**
 * A run's record: the runner's events in; log lines to the build writer, `Started` before the first of
 * them, steps to storage, and the artifact kept for the final state.
 */
import { Clock, DateTime, Effect, Exit, Stream, type Tracer } from "effect"
import type { Build, BuildStep } from "../../Build.ts"
import type { Fence } from "../../BuildState.ts"
import type { RunnerEvent } from "../../Runner.ts"
import type { StorageShape } from "../../Storage.ts"
import type { BuildWriter } from "./buildWriter.ts"
import type { Artifact } from "./outcome.ts"
import { logProgress } from "./progress.ts"
import { retryTransient } from "./storageRetry.ts"

export interface RunRecorderInput {
  readonly storage: Pick<StorageShape, "recordStep">
  readonly build: Build
  readonly fence: Fence
  readonly log: BuildWriter
  /** A write was refused because the lease is gone. */
  readonly onLeaseLost: Effect.Effect<void>
  /** Each step in a span (`Tracing`), from its start to its result. */
  readonly traced: boolean
}

export interface RunRecorder {
  /** Records the run's events as they come; answers the artifact the run made, if any. */
  readonly record: <E>(events: Stream.Stream<RunnerEvent, E>) => Effect.Effect<Artifact | null, E>
  /** Ends the steps still running with this status. */
  readonly closeSteps: (status: BuildStep["status"], at: DateTime.Utc) => Effect.Effect<void>
}

type LogEvent = Extract<RunnerEvent, { readonly _tag: "Log" }>

export const makeRunRecorder = (input: RunRecorderInput): RunRecorder => {
  const { storage, build, fence, log } = input
  const steps = new Map<number, BuildStep>()
  const spans = new Map<number, Tracer.Span>()
  // A step's span opens when it starts and ends with its result, under the run's span.
  const traceStep = (step: BuildStep) =>
    Effect.gen(function* () {
      if (step.status === "running") {
        const span = yield* Effect.makeSpan("kiln.build.step", {
          attributes: {
            "kiln.build_id": build.id,
            "kiln.step.index": step.index,
            "kiln.step.name": step.name
          }
        })
        spans.set(step.index, span)
        return
      }
      const span = spans.get(step.index)
      if (span === undefined) return
      spans.delete(step.index)
      span.attribute("kiln.step.status", step.status)
      span.end(
        yield* Clock.currentTimeNanos,
        step.status === "succeeded" ? Exit.void : Exit.fail(`step ${step.name} ${step.status}`)
      )
    })
  let started = false
  let artifact: Artifact | null = null

  // A write the run goes on without: a lost lease stops the run, anything else is only logged.
  const handled = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>) =>
    effect.pipe(
      Effect.catch((error) =>
        error._tag === "LeaseLost" ? input.onLeaseLost : Effect.logError("storage write failed", error)
      ),
      Effect.asVoid
    )
  const recordStep = (step: BuildStep) =>
    Effect.sync(() => steps.set(step.index, step)).pipe(
      Effect.andThen(input.traced ? traceStep(step) : Effect.void),
      Effect.andThen(handled(retryTransient(storage.recordStep(build.id, fence, step))))
    )

  const onEvent = (event: Exclude<RunnerEvent, LogEvent>) =>
    Effect.gen(function* () {
      switch (event._tag) {
        case "StepStarted":
          yield* logProgress(`step ${event.name}`, build, { step: event.index })
          return yield* recordStep({
            index: event.index,
            name: event.name,
            status: "running",
            startedAt: yield* DateTime.now,
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
            startedAt: step?.startedAt ?? (yield* DateTime.now),
            completedAt: yield* DateTime.now,
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
      if (!started) {
        started = true
        yield* log.transition({ _tag: "Started", at: yield* DateTime.now, ...fence }, handled)
      }
      let lines: Array<LogEvent> = []
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

  return {
    record: (events) => Stream.runForEachArray(events, onEvents).pipe(Effect.map(() => artifact)),
    closeSteps: (status, at) =>
      Effect.gen(function* () {
        for (const step of steps.values()) {
          if (step.status === "running") yield* recordStep({ ...step, status, completedAt: at })
        }
      })
  }
}
