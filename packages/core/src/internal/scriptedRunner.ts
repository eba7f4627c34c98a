/**
 * The scripted runner behind `Runner.layerTest`: no container engine, a tiny shell. It keeps the same
 * discipline a real runner must — it holds a "container" resource while it runs and removes it when the
 * run ends or is interrupted — so the runner conformance suite holds it to the same promises.
 */
import { Effect, Queue, Ref, Stream } from "effect"
import * as LineBuffer from "../LineBuffer.ts"
import type { LogStream } from "../LogLine.ts"
import * as Redactor from "../Redactor.ts"
import type { ActiveAmong, Resource, RunnerEvent, RunnerShape, RunSpec } from "../Runner.ts"
import { RunnerError } from "../RunnerError.ts"

interface Command {
  readonly words: ReadonlyArray<string>
  /** Run only if the previous command succeeded (`&&`). */
  readonly onlyAfterSuccess: boolean
}

const unquote = (word: string) => word.replace(/^(['"])(.*)\1$/, "$2")

/** Splits a script into commands on newlines, `;` and `&&`. Quoting is kept simple: no separators inside. */
const parse = (script: string): ReadonlyArray<Command> => {
  const commands: Array<Command> = []
  for (const line of script.split("\n")) {
    let onlyAfterSuccess = false
    for (const part of line.split(/(;|&&)/)) {
      if (part === ";" || part === "&&") {
        onlyAfterSuccess = part === "&&"
        continue
      }
      const words = part
        .trim()
        .split(/\s+/)
        .filter((word) => word.length > 0)
      if (words.length > 0) commands.push({ words, onlyAfterSuccess })
      onlyAfterSuccess = false
    }
  }
  return commands
}

const expand = (word: string, environment: ReadonlyMap<string, string>) =>
  word.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name: string) => environment.get(name) ?? "")

export const makeScriptedRunner = Effect.gen(function* () {
  const live = yield* Ref.make<ReadonlyArray<Resource>>([])

  const run = (spec: RunSpec): Stream.Stream<RunnerEvent, RunnerError> =>
    Stream.callback<RunnerEvent, RunnerError>((queue) =>
      Effect.gen(function* () {
        const emit = (event: RunnerEvent) => Queue.offer(queue, event)
        const container: Resource = {
          kind: "container",
          id: `scripted-${spec.buildId}`,
          buildId: spec.buildId
        }
        yield* Effect.acquireRelease(
          Ref.update(live, (resources) => [...resources, container]),
          () => Ref.update(live, (resources) => resources.filter((r) => r !== container))
        )
        const bytes = yield* Stream.runFold(
          spec.context,
          () => 0,
          (total, chunk) => total + chunk.length
        ).pipe(
          Effect.mapError(
            (error) => new RunnerError({ reason: "SourceFailed", message: error.message, cause: error })
          )
        )
        if (spec.app.build.strategy !== "commands") {
          return yield* new RunnerError({
            reason: "Internal",
            message: "the scripted runner runs only the commands strategy"
          })
        }
        const environment = new Map(spec.environment.map((v) => [v.name, v.value]))
        const redactor = Redactor.make(spec.environment.filter((v) => v.secret).map((v) => v.value))
        const steps = [
          { name: "build", script: spec.app.build.buildCommand ?? "" },
          ...(spec.app.build.deployCommand === null
            ? []
            : [{ name: "deploy", script: spec.app.build.deployCommand }])
        ]
        yield* emit({ _tag: "Log", stream: "system", step: null, text: `context: ${bytes} bytes` })
        for (const [index, step] of steps.entries()) {
          yield* emit({ _tag: "StepStarted", index, name: step.name })
          const buffers = {
            stdout: LineBuffer.make({ holdBack: redactor.longest }),
            stderr: LineBuffer.make({ holdBack: redactor.longest })
          }
          const write = (stream: "stdout" | "stderr", text: string) =>
            Effect.forEach(buffers[stream].push(text), (line) =>
              emit({ _tag: "Log", stream: stream as LogStream, step: step.name, text: redactor.redact(line) })
            )
          let status = 0
          for (const command of parse(step.script)) {
            if (command.onlyAfterSuccess && status !== 0) continue
            const words = command.words.map((word) => unquote(expand(word, environment)))
            const [name, ...args] = words
            if (name === "exit") {
              status = Number(args[0] ?? 0)
              break
            } else if (name === "true") status = 0
            else if (name === "false") status = 1
            else if (name === "sleep") {
              yield* Effect.sleep(`${Number(args[0] ?? 0) * 1000} millis`)
              status = 0
            } else if (name === "echo") {
              const toStderr = args[args.length - 1] === ">&2"
              const noNewline = args[0] === "-n"
              const text = args.slice(noNewline ? 1 : 0, toStderr ? -1 : undefined).join(" ")
              yield* write(toStderr ? "stderr" : "stdout", noNewline ? text : `${text}\n`)
              status = 0
            } else {
              yield* write("stderr", `sh: ${name}: not found\n`)
              status = 127
            }
          }
          for (const stream of ["stdout", "stderr"] as const) {
            yield* Effect.forEach(buffers[stream].end(), (line) =>
              emit({ _tag: "Log", stream, step: step.name, text: redactor.redact(line) })
            )
          }
          yield* emit({
            _tag: "StepFinished",
            index,
            name: step.name,
            status: status === 0 ? "succeeded" : "failed",
            exitCode: status
          })
          if (status !== 0) {
            return yield* new RunnerError({
              reason: "BuildFailed",
              message: `${step.name} command failed with exit code ${status}`,
              exitCode: status
            })
          }
        }
        yield* Queue.end(queue)
      })
    )

  const sweep = (activeAmong: ActiveAmong) =>
    Effect.gen(function* () {
      const listed = yield* Ref.get(live)
      const active = yield* activeAmong([...new Set(listed.map((r) => r.buildId))])
      const removed = listed.filter((r) => !active.has(r.buildId))
      yield* Ref.update(live, (resources) => resources.filter((r) => !removed.includes(r)))
      return removed
    })

  return { run, ping: Effect.void, resources: Ref.get(live), sweep } satisfies RunnerShape
})
