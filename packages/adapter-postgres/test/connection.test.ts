import { StorageError } from "@kiln/core"
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { attempt } from "../src/internal/connection.ts"

const fail = (reason: StorageError.StorageErrorReason) =>
  new StorageError.StorageError({ reason, message: reason })

/** A call that fails with these errors in turn, then answers; it counts its calls. */
const flaky = (errors: ReadonlyArray<StorageError.StorageError>) => {
  let calls = 0
  return {
    run: Effect.suspend(() => {
      const error = errors[calls++]
      return error === undefined ? Effect.succeed("row") : Effect.fail(error)
    }),
    calls: () => calls
  }
}

describe("attempt", () => {
  it("answers at once when the call succeeds, and rides out a few Busy answers", async () => {
    const once = flaky([])
    expect(await Effect.runPromise(attempt(once.run))).toBe("row")
    expect(once.calls()).toBe(1)
    const twice = flaky([fail("Busy"), fail("Busy")])
    expect(await Effect.runPromise(attempt(twice.run))).toBe("row")
    expect(twice.calls()).toBe(3)
  })

  it("gives up after four Busy answers, and at once on any other error", async () => {
    const always = flaky(Array.from({ length: 10 }, () => fail("Busy")))
    const exit = await Effect.runPromiseExit(attempt(always.run))
    expect(Exit.isFailure(exit)).toBe(true)
    expect(always.calls()).toBe(4)
    const broken = flaky([fail("Unavailable")])
    const failed = await Effect.runPromise(Effect.flip(attempt(broken.run)))
    expect([failed.reason, broken.calls()]).toEqual(["Unavailable", 1])
  })
})
