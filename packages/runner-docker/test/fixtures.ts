/**
 * Shared setup of the Docker tests: whether an engine is there (and what to do if not), run specs for both
 * strategies, a way to follow a run, and the docker CLI to check what a run left on the engine.
 */
import { randomBytes } from "node:crypto"
import { type App, Runner } from "@kiln/core"
import { RunnerConformance } from "@kiln/core/testing"
import { Effect, Exit, Fiber, Queue, Stream } from "effect"
import { builderImage } from "../src/testing.ts"

export {
  builderImage,
  describeDocker,
  docker,
  dockerLines,
  exists,
  removeNamespace,
  unavailable
} from "../src/testing.ts"

/** A namespace of the test file's own, so parallel test files never sweep each other's containers. */
export const namespaceOf = (file: string) => `kiln-test-${file}-${process.pid}`

export const hex = (digits: number) =>
  randomBytes(Math.ceil(digits / 2))
    .toString("hex")
    .slice(0, digits)

/** A `commands` run of busybox. */
export const commandsSpec = (
  build: string,
  more: Omit<Parameters<typeof RunnerConformance.specOf>[1], "build"> = {},
  settings: Partial<App.BuildSettings> = {}
): Runner.RunSpec => {
  const spec = RunnerConformance.specOf({ builderImage }, { build, ...more })
  return { ...spec, app: { ...spec.app, build: { ...spec.app.build, ...settings } } }
}

/** A `dockerfile` run of these files, with an image name of its own. */
export const dockerfileSpec = (
  files: Readonly<Record<string, string>>,
  settings: Partial<App.BuildSettings> = {},
  environment: Runner.RunSpec["environment"] = []
): Runner.RunSpec => {
  const spec = RunnerConformance.specOf(
    { builderImage },
    { build: "true", context: RunnerConformance.contextOf(files), environment }
  )
  return {
    ...spec,
    app: {
      ...spec.app,
      handle: `kiln-test-${hex(10)}`,
      build: { ...spec.app.build, strategy: "dockerfile", ...settings }
    },
    version: { ...spec.version, commitSha: hex(40) }
  }
}

export const tagOf = (spec: Runner.RunSpec, registry?: string) =>
  `${registry === undefined ? "" : `${registry}/`}${spec.app.handle}:${spec.version.commitSha!.slice(0, 8)}`

/** Every event of a run that ends, and how it ended. */
export const runToEnd = (spec: Runner.RunSpec) =>
  Effect.gen(function* () {
    const runner = yield* Runner.Runner
    const events: Array<Runner.RunnerEvent> = []
    const exit = yield* runner.run(spec).pipe(
      Stream.runForEach((event) => Effect.sync(() => events.push(event))),
      Effect.exit
    )
    return { events, exit }
  })

/** Starts a run in the background; `waitFor` resolves at the first log line equal to `text`. */
export const runInBackground = (spec: Runner.RunSpec) =>
  Effect.gen(function* () {
    const runner = yield* Runner.Runner
    const events = yield* Queue.unbounded<Runner.RunnerEvent>()
    const seen: Array<Runner.RunnerEvent> = []
    const fiber = yield* runner.run(spec).pipe(
      Stream.runForEach((event) => Queue.offer(events, event)),
      Effect.forkChild
    )
    const waitFor = (text: string) =>
      Effect.gen(function* () {
        while (true) {
          const event = yield* Queue.take(events)
          seen.push(event)
          if (event._tag === "Log" && event.text === text) return event
        }
      }).pipe(Effect.timeout("60 seconds"))
    /** Interrupts the run; answers how long the interruption (with its cleanup) took. */
    const interrupt = Effect.gen(function* () {
      const started = Date.now()
      yield* Fiber.interrupt(fiber)
      return Date.now() - started
    })
    return { waitFor, interrupt, seen }
  })

/** The error a run failed with. */
export const errorOf = (exit: Exit.Exit<void, Runner.RunnerError>) =>
  Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined

export const logLines = (events: ReadonlyArray<Runner.RunnerEvent>, step?: string | null) =>
  events.flatMap((e) => (e._tag === "Log" && (step === undefined || e.step === step) ? [e.text] : []))

export const stepNames = (events: ReadonlyArray<Runner.RunnerEvent>) =>
  events.flatMap((e) => (e._tag === "StepStarted" ? [e.name] : []))
