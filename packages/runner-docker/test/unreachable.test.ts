import { expect, it } from "@effect/vitest"
import { Runner } from "@kiln/core"
import { RunnerConformance } from "@kiln/core/testing"
import { Effect, Stream } from "effect"
import { DockerRunner } from "../src/index.ts"

// No engine needed: these point the runner at a socket that does not exist.
const nowhere = DockerRunner.layer({ docker: { socketPath: "/nonexistent/docker.sock" } })

it.effect("a run fails with Unavailable, which a retry can help, when the engine cannot be reached", () =>
  Effect.gen(function* () {
    const runner = yield* Runner.Runner
    const spec = RunnerConformance.specOf({}, { build: "echo never" })
    const error = yield* runner.run(spec).pipe(Stream.runDrain, Effect.flip)
    expect(error).toMatchObject({ _tag: "RunnerError", reason: "Unavailable" })
    expect(error.message).toContain("/nonexistent/docker.sock")
    expect(error.retryable).toBe(true)
    expect(yield* Effect.flip(runner.resources)).toMatchObject({ reason: "Unavailable" })
    expect(yield* Effect.flip(runner.ping)).toMatchObject({ reason: "Unavailable" })
    expect(yield* Effect.flip(runner.sweep(Runner.activeOnly([])))).toMatchObject({ reason: "Unavailable" })
  }).pipe(Effect.provide(nowhere))
)
