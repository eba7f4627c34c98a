/**
 * The runner conformance suites. They use the `commands` strategy, which every runner must run the same
 * way, so `Runner.layerTest` and a real container runner are held to the same promises:
 *
 * ```ts
 * import { RunnerConformance } from "@kiln/core/testing"
 * RunnerConformance.all("docker", () => DockerRunner.layer(options), { builderImage: "busybox:latest" })
 * ```
 */
import { cancel } from "./runner/cancel.ts"
import { events } from "./runner/events.ts"
import type { MakeRunner, RunnerSuiteOptions } from "./runner/fixtures.ts"
import { secrets } from "./runner/secrets.ts"

export type { MakeRunner, RunnerSuiteOptions } from "./runner/fixtures.ts"
export { archiveOf, contextOf, runInBackground, runToEnd, specOf } from "./runner/fixtures.ts"
export { cancel, events, secrets }

export const all = (name: string, make: MakeRunner, options: RunnerSuiteOptions = {}): void => {
  events(name, make, options)
  cancel(name, make, options)
  secrets(name, make, options)
}
