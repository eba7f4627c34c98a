import { describe, expect } from "@effect/vitest"
import { Effect, Exit, Stream } from "effect"
import { Runner } from "../../Runner.ts"
import { SourceError } from "../../SourceError.ts"
import { logText, type MakeRunner, type RunnerSuiteOptions, runToEnd, specOf, test } from "./fixtures.ts"

const errorOf = (exit: Exit.Exit<void, unknown>) =>
  Exit.isFailure(exit)
    ? (exit.cause.reasons.find((r) => r._tag === "Fail") as { error: unknown } | undefined)?.error
    : undefined

/** Events in order, each command a step, and failures mapped to what a user needs to read. */
export const events = (name: string, make: MakeRunner, options: RunnerSuiteOptions = {}) =>
  describe(`${name} › runner: events and failures`, () => {
    const it = test(make)

    it("answers a ping, for readiness probes", () => Runner.use((runner) => runner.ping))

    it("runs the build then the deploy command as steps, in order, with their output", () =>
      Effect.gen(function* () {
        const { events, exit } = yield* runToEnd(
          specOf(options, { build: "echo hello; echo world; echo oops >&2", deploy: "echo deployed" })
        )
        expect(Exit.isSuccess(exit)).toBe(true)
        const shape = events.flatMap((event) =>
          event._tag === "StepStarted"
            ? [`start ${event.index} ${event.name}`]
            : event._tag === "StepFinished"
              ? [`finish ${event.index} ${event.name} ${event.status} ${event.exitCode}`]
              : []
        )
        expect(shape).toEqual([
          "start 0 build",
          "finish 0 build succeeded 0",
          "start 1 deploy",
          "finish 1 deploy succeeded 0"
        ])
        expect(logText(events, "build").filter((line) => line !== "oops")).toEqual(["hello", "world"])
        expect(events).toContainEqual({ _tag: "Log", stream: "stderr", step: "build", text: "oops" })
        expect(logText(events, "deploy")).toEqual(["deployed"])
        // Every log line of a step lies between its start and its finish.
        const deployStart = events.findIndex((e) => e._tag === "StepStarted" && e.name === "deploy")
        const buildFinish = events.findIndex((e) => e._tag === "StepFinished" && e.name === "build")
        for (const [i, event] of events.entries()) {
          if (event._tag === "Log" && event.step === "build") expect(i).toBeLessThan(buildFinish)
          if (event._tag === "Log" && event.step === "deploy") expect(i).toBeGreaterThan(deployStart)
        }
      }))

    it("fails with BuildFailed and the exit code when a command fails, and runs nothing after it", () =>
      Effect.gen(function* () {
        const { events, exit } = yield* runToEnd(
          specOf(options, { build: "echo before && exit 3; echo never", deploy: "echo deployed" })
        )
        const error = errorOf(exit) as { reason: string; exitCode: number; message: string }
        expect(error).toMatchObject({ _tag: "RunnerError", reason: "BuildFailed", exitCode: 3 })
        expect(error.message).toContain("exit code 3")
        expect(logText(events)).toEqual(["before"])
        expect(events).toContainEqual({
          _tag: "StepFinished",
          index: 0,
          name: "build",
          status: "failed",
          exitCode: 3
        })
        expect(events.some((e) => e._tag === "StepStarted" && e.name === "deploy")).toBe(false)
      }))

    it("fails with SourceFailed when the source cannot be read, before running anything", () =>
      Effect.gen(function* () {
        const broken = Stream.fail(new SourceError({ reason: "Missing", message: "archive abc is missing" }))
        const { events, exit } = yield* runToEnd(specOf(options, { build: "echo never", context: broken }))
        expect(errorOf(exit)).toMatchObject({ _tag: "RunnerError", reason: "SourceFailed" })
        expect(logText(events)).toEqual([])
      }))
  })
