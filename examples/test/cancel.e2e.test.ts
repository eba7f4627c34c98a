/**
 * Cancel and timeout end to end: the engine stops the Docker runner, which stops and removes what it
 * started, before the build's final state is written.
 */
import { expect, it } from "@effect/vitest"
import { Access, type App, Storage } from "@kiln/core"
import * as DockerTesting from "@kiln/runner-docker/testing"
import { Effect } from "effect"
import { afterAll } from "vitest"
import { gitVersion, logOf, makeApp, queue, scratch, stack, stopped } from "./fixtures/stack.ts"

const namespace = `kiln-e2e-cancel-${process.pid}`
const where = await scratch("cancel")
afterAll(() => {
  if (DockerTesting.unavailable === undefined) DockerTesting.removeNamespace(namespace)
  return where.close()
})

/**
 * What this file's builds left: labelled containers of its runner, and any container whose command holds
 * the nonce — an image build's intermediate container carries no label of ours.
 */
const leftovers = () => [
  ...DockerTesting.dockerLines("ps", "-aq", "--filter", `label=dev.kiln.namespace=${namespace}`),
  ...DockerTesting.dockerLines("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}").filter((line) =>
    line.includes(where.nonce)
  )
]

// The runner's default stop grace: a cancelled build stops within it plus 2 s.
const graceMs = 10_000

const strategies: Record<"dockerfile" | "commands", Partial<App.BuildSettings>> = {
  dockerfile: { rootDirectory: "slow", caching: false },
  commands: {
    strategy: "commands",
    rootDirectory: "commands",
    buildCommand: `echo ${where.nonce}; sleep 600`
  }
}

const printed = (id: Parameters<typeof logOf>[0]) =>
  Effect.gen(function* () {
    while (!(yield* logOf(id)).some((line) => line.text === where.nonce)) yield* Effect.sleep("50 millis")
  }).pipe(Effect.timeout("60 seconds"))

DockerTesting.describeDocker("e2e › cancel and timeout", () => {
  for (const [strategy, settings] of Object.entries(strategies)) {
    it.live(
      `cancels a ${strategy} build while it sleeps: stopped and removed, intermediate containers too`,
      () =>
        Effect.gen(function* () {
          const storage = yield* Storage.Storage
          const app = yield* makeApp(settings)
          const build = yield* queue((yield* gitVersion(where, app)).id)
          yield* printed(build.id)
          expect(leftovers().length).toBeGreaterThan(0)
          const requested = Date.now()
          yield* storage.requestCancel(Access.all, build.id, "changed my mind")
          const done = yield* stopped(build.id)
          const took = Date.now() - requested
          expect(done).toMatchObject({ status: "cancelled", cancelReason: "changed my mind" })
          expect(took).toBeLessThan(graceMs + 2_000)
          expect(leftovers()).toEqual([])
          console.info(`e2e cancel (${strategy}): stopped and cleaned up in ${took} ms`)
        }).pipe(Effect.provide(stack(where, { namespace }))),
      90_000
    )

    it.live(
      `times a ${strategy} build out and cleans up the same way`,
      () =>
        Effect.gen(function* () {
          const app = yield* makeApp({ ...settings, timeoutMs: 2_000 })
          const done = yield* stopped((yield* queue((yield* gitVersion(where, app)).id)).id)
          expect(done).toMatchObject({ status: "failed", outcome: "timed_out", error: "timed out after 2 s" })
          expect(leftovers()).toEqual([])
        }).pipe(Effect.provide(stack(where, { namespace }))),
      90_000
    )
  }
})
