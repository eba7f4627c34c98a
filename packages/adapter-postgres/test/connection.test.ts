import { StorageError } from "@kiln/core"
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { attempt, open, runOn } from "../src/internal/connection.ts"
import * as PgTesting from "../src/testing.ts"
import { sql } from "./fixtures.ts"

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

describe("a checked-out connection", () => {
  // Node ends the process for an "error" event nobody hears: the vitest worker would die with it.
  it("that breaks between statements fails its next statement, and the process goes on", async () => {
    const exit = await Effect.runPromiseExit(
      Effect.gen(function* () {
        const db = yield* open({ connectionString: PgTesting.databaseUrl(), schema: "public", poolSize: 2 })
        const client = yield* db.checkout
        const [{ pid }] = (yield* runOn(client)({ text: "SELECT pg_backend_pid() AS pid" })) as Array<{
          pid: number
        }>
        yield* sql("SELECT pg_terminate_backend($1)", [pid])
        // The server's goodbye arrives while nothing runs on the connection.
        yield* Effect.sleep("200 millis")
        const next = yield* Effect.flip(runOn(client)({ text: "SELECT 1" }))
        client.release(true)
        // The pool opens a fresh connection for the next statement.
        const fresh = yield* db.run({ text: "SELECT 1 AS one" }, [])
        return { next, fresh }
      }).pipe(Effect.scoped)
    )
    expect(Exit.isSuccess(exit)).toBe(true)
    if (Exit.isSuccess(exit)) {
      expect(exit.value.next._tag).toBe("StorageError")
      expect(exit.value.fresh).toEqual([{ one: 1 }])
    }
  })
})
