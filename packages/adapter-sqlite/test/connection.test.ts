import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { attempt } from "../src/internal/connection.ts"

const busy = () => Object.assign(new Error("database is locked"), { code: "SQLITE_BUSY" })

/** A driver call that throws these errors in turn, then answers; it counts its calls. */
const flaky = (errors: ReadonlyArray<Error>) => {
  let calls = 0
  return {
    run: () => {
      const error = errors[calls++]
      if (error !== undefined) throw error
      return "row"
    },
    calls: () => calls
  }
}

describe("attempt", () => {
  it("answers at once when the call succeeds, and rides out a few Busy answers", async () => {
    const once = flaky([])
    expect(await Effect.runPromise(attempt(once.run))).toBe("row")
    expect(once.calls()).toBe(1)
    const twice = flaky([busy(), busy()])
    expect(await Effect.runPromise(attempt(twice.run))).toBe("row")
    expect(twice.calls()).toBe(3)
  })

  it("gives up after four Busy answers, and at once on any other error", async () => {
    const always = flaky(Array.from({ length: 10 }, busy))
    const exit = await Effect.runPromiseExit(attempt(always.run))
    expect(Exit.isFailure(exit)).toBe(true)
    expect(always.calls()).toBe(4)
    const broken = flaky([Object.assign(new Error("no such table: builds"), { code: "SQLITE_ERROR" })])
    const failed = await Effect.runPromise(Effect.flip(attempt(broken.run)))
    expect([failed.reason, broken.calls()]).toEqual(["Unknown", 1])
  })
})
