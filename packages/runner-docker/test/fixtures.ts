/**
 * Shared setup of the Docker tests: whether an engine is there (and what to do if not), run specs for both
 * strategies, a way to follow a run, and the docker CLI to check what a run left on the engine.
 */
import { randomBytes } from "node:crypto"
import type { App, Runner } from "@kiln/core"
import { RunnerConformance } from "@kiln/core/testing"
import { Exit } from "effect"
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

/** Runs as the conformance suites run them. */
export const { runInBackground, runToEnd } = RunnerConformance

/** The error a run failed with. */
export const errorOf = (exit: Exit.Exit<void, Runner.RunnerError>) =>
  Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined

export const logLines = (events: ReadonlyArray<Runner.RunnerEvent>, step?: string | null) =>
  events.flatMap((e) => (e._tag === "Log" && (step === undefined || e.step === step) ? [e.text] : []))

export const stepNames = (events: ReadonlyArray<Runner.RunnerEvent>) =>
  events.flatMap((e) => (e._tag === "StepStarted" ? [e.name] : []))
