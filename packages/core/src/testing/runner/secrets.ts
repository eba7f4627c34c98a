import { describe, expect } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { type MakeRunner, type RunnerSuiteOptions, runToEnd, specOf, test } from "./fixtures.ts"

const secret = "s3cr3t-T0KEN-value"

/** Secret values never leave a run in a log line, however the output is split into writes. */
export const secrets = (name: string, make: MakeRunner, options: RunnerSuiteOptions = {}) =>
  describe(`${name} › runner: secrets`, () => {
    const it = test(make)

    it("redacts secret values, also when a command writes them in pieces", () =>
      Effect.gen(function* () {
        const { events, exit } = yield* runToEnd(
          specOf(options, {
            build:
              "echo token=$API_TOKEN; echo -n s3cr3t-T0; sleep 0.3; echo KEN-value; echo $API_TOKEN >&2; echo public=$REGION",
            environment: [
              { name: "API_TOKEN", value: secret, secret: true },
              { name: "REGION", value: "eu-west", secret: false }
            ]
          })
        )
        expect(Exit.isSuccess(exit)).toBe(true)
        // Each stream in its own order: a container engine does not keep stdout and stderr in step.
        const lines = (stream: "stdout" | "stderr") =>
          events.flatMap((e) => (e._tag === "Log" && e.stream === stream ? [e.text] : []))
        expect(lines("stdout")).toEqual(["token=***", "***", "public=eu-west"])
        expect(lines("stderr")).toEqual(["***"])
        expect(JSON.stringify(events)).not.toContain("T0KEN")
      }))
  })
