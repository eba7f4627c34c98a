/**
 * The `dockerfile` strategy. The context goes straight to the engine's classic builder; each `Step N/M : …`
 * of Docker's progress starts a step, and the output under it is that step's log, in Docker's order. The
 * image is tagged `{registry/}{handle}:{short hash}` and, when a registry is configured, pushed in a final
 * `push` step. No environment variable is passed to the build (no build args), so secrets never reach it.
 *
 * Kiln's labels go on the image as one LABEL instruction appended to the Dockerfile on its way to the
 * engine: the engine's own `labels` option adds one instruction per label, and on the classic builder each
 * costs a step and an image commit (~60 ms each; five of them made a build 35% slower than the CLI's).
 * That step is Kiln's business, so it is not shown, and steps are numbered out of the Dockerfile's own
 * instructions ("1/3 : FROM busybox" for a three-instruction Dockerfile).
 */
import { type LogLine, type Runner, RunnerError } from "@kiln/core"
import { BuildContext, Redactor } from "@kiln/core/adapter"
import { Effect, Exit, Option, Schedule, type Scope, Stream } from "effect"
import type { DockerClient, ProgressMessage } from "./DockerClient.ts"
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
    const { repository, tag } = yield* imageTag(spec, settings.registry?.host)
    const image = `${repository}:${tag}`
    const redactor = Redactor.make(spec.environment.filter((v) => v.secret).map((v) => v.value))
    const lines = OutputLines.make(redactor)
    const labels = Labels.forRun(spec, settings.namespace)
    let step: { readonly index: number; readonly name: string } | undefined
    // Build containers Docker reported running and not yet removed: on a cancel the engine removes them
    // itself, but asynchronously, so the run waits until they are gone (and removes any it left).
    const intermediates = new Set<string>()
    yield* Effect.addFinalizer((exit) =>
      Exit.isSuccess(exit) ? Effect.void : removeIntermediates(client, intermediates, settings.stopGraceMs)
    )

    const log = (stream: LogLine.LogStream, text: string) =>
      emit({ _tag: "Log", stream, step: step?.name ?? null, text })
    const finish = (status: "succeeded" | "failed", exitCode: number | null) =>
      step === undefined
        ? Effect.void
        : emit({ _tag: "StepFinished", index: step.index, name: step.name, status, exitCode })
    let nextIndex = 0
    const begin = (index: number, name: string) =>
      Effect.suspend(() => {
        step = { index, name }
        nextIndex = index + 1
        return emit({ _tag: "StepStarted", index, name })
      })
    const flush = (stream: OutputLines.OutputStream) =>
      Effect.forEach(lines.end(stream), (text) => log(stream, text), { discard: true })
    const fail = (failure: { readonly message: string; readonly code?: number }) =>
      Effect.gen(function* () {
        const message = redactor.redact(failure.message.trim())
        yield* flush("stdout")
        yield* flush("stderr")
        yield* log("stderr", message)
        yield* finish("failed", failure.code ?? null)
        return yield* new RunnerError.RunnerError({
          reason: "BuildFailed",
          message,
          ...(failure.code === undefined ? {} : { exitCode: failure.code })
        })
      })

    const onStdoutLine = (text: string) =>
      Effect.gen(function* () {
        const started = stepLine.exec(text)
        if (started !== null) {
          // Whatever the previous step left unterminated on stderr is still its own.
          yield* flush("stderr")
          yield* finish("succeeded", null)
          const number = Number(started[1])
          const total = Number(started[2]) - 1
          if (number > total) {
            // Kiln's LABEL instruction: its lines stay out of the log, except the build's summary.
            step = undefined
            return
          }
          const line = `Step ${number}/${total} : ${started[3]}`
          yield* begin(number - 1, line.slice("Step ".length, "Step ".length + maxStepName))
          return yield* log("stdout", line)
        }
        const running = runningIn.exec(text)
        if (running !== null) intermediates.add(running[1]!)
        const removed = removing.exec(text)
        if (removed !== null) intermediates.delete(removed[1]!)
        if (step !== undefined || summary.test(text)) yield* log("stdout", text)
      })

    const onMessage = (message: ProgressMessage) => {
      const failure = failureOf(message)
      if (failure !== undefined) return fail(failure)
      if (message.stream !== undefined) {
        const { stream, text } = splitStderr(message.stream)
        return Effect.forEach(
          lines.push(stream, text),
          (line) => (stream === "stdout" ? onStdoutLine(line) : log("stderr", line)),
          { discard: true }
        )
      }
      // A base image pulled for `FROM` reports its progress like a pull.
      const status = condense(message)
      return status === undefined ? Effect.void : onStdoutLine(redactor.redact(status))
    }

    yield* Stream.runForEach(
      client.buildImage(
        BuildContext.appendToFile(spec.context, spec.app.build.dockerfilePath, labelInstruction(labels)),
        {
          dockerfile: spec.app.build.dockerfilePath,
          tag: image,
          caching: spec.app.build.caching,
          limits: spec.app.build.limits
        }
      ),
      onMessage
    ).pipe(
      Effect.catchTag("SourceError", (error) =>
        Effect.fail(
          new RunnerError.RunnerError({ reason: "SourceFailed", message: error.message, cause: error })
        )
      )
    )
    yield* flush("stdout")
    yield* flush("stderr")
    yield* finish("succeeded", null)
    const imageId = yield* client.inspectImage(image).pipe(
      Effect.flatMap(
        Option.match({
          onNone: () =>
            Effect.fail(
              new RunnerError.RunnerError({
                reason: "Internal",
                message: `the build succeeded but the engine has no image ${image}`
              })
            ),
          onSome: Effect.succeed
        })
      )
    )

    let digest: string | undefined
    if (settings.registry !== undefined) {
      yield* begin(nextIndex, "push")
      yield* Stream.runForEach(client.pushImage(repository, tag, settings.registry.auth), (message) => {
        const failure = failureOf(message)
        if (failure !== undefined) return fail(failure)
        if (message.aux?.Digest !== undefined) digest = message.aux.Digest
        const status = condense(message)
        return status === undefined ? Effect.void : log("stdout", redactor.redact(status))
      })
      yield* finish("succeeded", null)
    }
    yield* emit({ _tag: "Artifact", imageTag: image, imageDigest: digest ?? imageId })
  })

/** One `LABEL "key"="value" …` instruction; keys and values are plain ASCII, so JSON quoting is Dockerfile quoting. */
const labelInstruction = (labels: Readonly<Record<string, string>>) =>
  `LABEL ${Object.entries(labels)
    .map(([key, value]) => `${JSON.stringify(key)}=${JSON.stringify(value)}`)
    .join(" ")}`

// Step names are Docker's text ("1/3 : FROM busybox"), cut short: a RUN line can be very long.
const maxStepName = 200
const stepLine = /^Step (\d+)\/(\d+) : (.*)$/
// Outside any step: the build's summary at the end.
const summary = /^Successfully (built|tagged) /
const runningIn = /^ ---> Running in ([0-9a-f]{12,64})$/
const removing = /^Removing intermediate container ([0-9a-f]{12,64})$/

// The classic builder wraps each write of a RUN command's stderr in these colour codes.
const stderrStart = "\u001b[91m"
const stderrEnd = "\u001b[0m"

const splitStderr = (text: string): { readonly stream: OutputLines.OutputStream; readonly text: string } =>
  text.startsWith(stderrStart)
    ? {
        stream: "stderr",
        text: text.slice(stderrStart.length, text.endsWith(stderrEnd) ? -stderrEnd.length : undefined)
      }
    : { stream: "stdout", text }

const removeIntermediates = (client: DockerClient, ids: ReadonlySet<string>, withinMs: number) =>
  Effect.forEach(
    [...ids],
    (id) =>
      client
        .removeContainer(id)
        .pipe(
          Effect.andThen(
            client
              .containerExists(id)
              .pipe(Effect.repeat({ while: (exists) => exists, schedule: Schedule.spaced("100 millis") }))
          )
        ),
    { concurrency: "unbounded", discard: true }
  ).pipe(
    Effect.timeout(withinMs),
    Effect.catchCause((cause) => Effect.logWarning("could not remove a cancelled build's containers", cause))
  )

/** `{registry/}{handle}:{short hash}`, the short hash being the first 8 hex digits of the commit or archive sha. */
const imageTag = (
  spec: Runner.RunSpec,
  registry: string | undefined
): Effect.Effect<{ readonly repository: string; readonly tag: string }, RunnerError.RunnerError> =>
  spec.version.commitSha === null
    ? Effect.fail(
        new RunnerError.RunnerError({
          reason: "Internal",
          message: `version ${spec.version.id} has no commit sha yet, so its image has no tag`
        })
      )
    : Effect.succeed({
        repository: registry === undefined ? spec.app.handle : `${registry}/${spec.app.handle}`,
        tag: spec.version.commitSha.slice(0, 8)
      })
