/**
 * The `commands` strategy. One container from the builder image idles while the context is copied into
 * `/workspace` and the build command, then the deploy command, run in it with `exec` (`sh -c`), each a step
 * whose exit code decides. The container is stopped and removed when the run ends, however it ends.
 */
import { type Runner, RunnerError } from "@kiln/core"
import { Redactor } from "@kiln/core/adapter"
import { Effect, Option, Schedule, type Scope, Stream } from "effect"
import type { DockerClient } from "./DockerClient.ts"
import * as Labels from "./labels.ts"
import * as OutputLines from "./outputLines.ts"
import { condense, failureOf } from "./progress.ts"
import type { Emit, Settings } from "./settings.ts"

export const run = (
  settings: Settings,
  spec: Runner.RunSpec,
  emit: Emit
): Effect.Effect<void, RunnerError.RunnerError, Scope.Scope> =>
  Effect.gen(function* () {
    const { client } = settings
    const image = spec.app.build.builderImage
    yield* ensureImage(client, image, emit)
    const container = yield* Effect.acquireRelease(
      client.createContainer({
        image,
        command: ["sh", "-c", idleScript],
        workingDir: workspace,
        labels: Labels.forRun(spec, settings.namespace),
        limits: spec.app.build.limits,
        maxLogBytes: settings.maxLogBytes
      }),
      (id) =>
        client.stopContainer(id, settings.stopGraceMs).pipe(
          Effect.andThen(client.removeContainer(id)),
          Effect.catchCause((cause) => Effect.logWarning(`could not remove container ${id}`, cause))
        )
    )
    yield* client.startContainer(container).pipe(
      Effect.mapError((error) =>
        error.reason === "Internal"
          ? new RunnerError.RunnerError({
              reason: "BuildFailed",
              message: `builder image ${image} could not start: ${error.message}`,
              cause: error
            })
          : error
      )
    )
    yield* client
      .putArchive(container, workspace, spec.context)
      .pipe(
        Effect.catchTag("SourceError", (error) =>
          Effect.fail(
            new RunnerError.RunnerError({ reason: "SourceFailed", message: error.message, cause: error })
          )
        )
      )

    const env = spec.environment.map((v) => `${v.name}=${v.value}`)
    const redactor = Redactor.make(spec.environment.filter((v) => v.secret).map((v) => v.value))
    const steps = [
      { name: "build", command: spec.app.build.buildCommand },
      { name: "deploy", command: spec.app.build.deployCommand }
    ].flatMap((step) => (step.command === null ? [] : [{ name: step.name, command: step.command }]))

    for (const [index, step] of steps.entries()) {
      yield* emit({ _tag: "StepStarted", index, name: step.name })
      const exec = yield* client.createExec(container, {
        command: ["sh", "-c", step.command],
        workingDir: workspace,
        env
      })
      const lines = OutputLines.make(redactor)
      const log = (stream: OutputLines.OutputStream, texts: ReadonlyArray<string>) =>
        Effect.forEach(texts, (text) => emit({ _tag: "Log", stream, step: step.name, text }), {
          discard: true
        })
      yield* Stream.runForEach(client.startExec(exec), (output) =>
        log(output.stream, lines.push(output.stream, output.data))
      )
      yield* log("stdout", lines.end("stdout"))
      yield* log("stderr", lines.end("stderr"))
      const exitCode = yield* exitCodeOf(client, exec, step.name)
      yield* emit({
        _tag: "StepFinished",
        index,
        name: step.name,
        status: exitCode === 0 ? "succeeded" : "failed",
        exitCode
      })
      if (exitCode !== 0) {
        return yield* new RunnerError.RunnerError({
          reason: "BuildFailed",
          message: `${step.name} command failed with exit code ${exitCode}`,
          exitCode
        })
      }
    }
  })

/** The builder image, pulled if it is not there yet. */
const ensureImage = (client: DockerClient, image: string, emit: Emit) =>
  Effect.gen(function* () {
    if (Option.isSome(yield* client.inspectImage(image))) return
    const unavailable = (message: string, cause?: unknown) =>
      new RunnerError.RunnerError({
        reason: "BuildFailed",
        message: `builder image ${image} is not available: ${message}`,
        cause
      })
    yield* emit({ _tag: "Log", stream: "system", step: null, text: `pulling builder image ${image}` })
    const pull = client
      .pullImage(image)
      .pipe(
        Stream.mapError((error) =>
          error.reason === "Unavailable" ? error : unavailable(error.message, error)
        )
      )
    yield* Stream.runForEach(pull, (message) => {
      const failure = failureOf(message)
      if (failure !== undefined) return Effect.fail(unavailable(failure.message))
      const status = condense(message)
      return status === undefined
        ? Effect.void
        : emit({ _tag: "Log", stream: "system", step: null, text: status })
    })
  })

/** The exit code of an exec whose output has ended; the engine may take a moment to record it. */
const exitCodeOf = (client: DockerClient, exec: string, step: string) =>
  client.inspectExec(exec).pipe(
    Effect.repeat({
      while: (state) => state.running,
      schedule: Schedule.spaced("50 millis"),
      times: 100
    }),
    Effect.flatMap((state) =>
      state.exitCode === null || state.running
        ? Effect.fail(
            new RunnerError.RunnerError({
              reason: "Internal",
              message: `${step} command reported no exit code`
            })
          )
        : Effect.succeed(state.exitCode)
    )
  )

const workspace = "/workspace"

/**
 * The container's own process. PID 1 is Docker's init, which forwards the stop signal to this shell. The
 * commands run with `exec` are not its children, so it passes the signal on to every process in the
 * container and waits for them to exit: a build gets the whole grace period to stop cleanly, and the
 * engine kills whatever is left when the grace period ends.
 */
const idleScript =
  "trap 'kill -TERM -1 2>/dev/null; while kill -0 -1 2>/dev/null; do sleep 0.1; done; exit 0' TERM; " +
  "while :; do sleep 1 & wait $!; done"
