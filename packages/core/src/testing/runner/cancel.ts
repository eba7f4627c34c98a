import { describe, expect } from "@effect/vitest"
import { Clock, Effect, Fiber, Stream } from "effect"
import { activeOnly, Runner } from "../../Runner.ts"
import { type MakeRunner, type RunnerSuiteOptions, runInBackground, specOf, test } from "./fixtures.ts"

/** Interruption is cancel and timeout: it stops the work and removes what the run created. */
export const cancel = (name: string, make: MakeRunner, options: RunnerSuiteOptions = {}) =>
  describe(`${name} › runner: cancel, timeout and cleanup`, () => {
    const it = test(make)
    const stopWithinMs = options.stopWithinMs ?? 12_000

    it(
      "stops a running command and removes everything when interrupted",
      () =>
        Effect.gen(function* () {
          const runner = yield* Runner
          const spec = specOf(options, { build: "echo started; sleep 600; echo finished" })
          const { fiber, waitFor } = yield* runInBackground(spec)
          yield* waitFor("started")
          expect((yield* runner.resources).some((r) => r.buildId === spec.buildId)).toBe(true)
          const before = yield* Clock.currentTimeMillis
          yield* Fiber.interrupt(fiber)
          const took = (yield* Clock.currentTimeMillis) - before
          expect(took).toBeLessThan(stopWithinMs)
          expect((yield* runner.resources).filter((r) => r.buildId === spec.buildId)).toEqual([])
        }),
      120_000
    )

    it(
      "stops and cleans up the same way when a timeout interrupts it",
      () =>
        Effect.gen(function* () {
          const runner = yield* Runner
          const spec = specOf(options, { build: "echo started; sleep 600" })
          const before = yield* Clock.currentTimeMillis
          const outcome = yield* runner
            .run(spec)
            .pipe(Stream.runDrain, Effect.timeout("3 seconds"), Effect.flip)
          expect(outcome._tag).toBe("TimeoutError")
          // The timeout returns only once the interrupted run has cleaned up.
          expect((yield* Clock.currentTimeMillis) - before).toBeLessThan(3_000 + stopWithinMs)
          expect((yield* runner.resources).filter((r) => r.buildId === spec.buildId)).toEqual([])
        }),
      120_000
    )

    it(
      "sweeps only what no live build owns",
      () =>
        Effect.gen(function* () {
          const runner = yield* Runner
          const spec = specOf(options, { build: "echo started; sleep 600" })
          const { fiber, waitFor } = yield* runInBackground(spec)
          yield* waitFor("started")
          expect(yield* runner.sweep(activeOnly([spec.buildId]))).toEqual([])
          expect((yield* runner.resources).some((r) => r.buildId === spec.buildId)).toBe(true)
          const swept = yield* runner.sweep(activeOnly([]))
          expect(swept.some((r) => r.buildId === spec.buildId)).toBe(true)
          yield* Fiber.interrupt(fiber)
          expect((yield* runner.resources).filter((r) => r.buildId === spec.buildId)).toEqual([])
        }),
      120_000
    )
  })
