/**
 * Watching builds from a test: poll a build through storage until it reaches a state, and read its whole
 * log. For tests of engines and whole stacks, which see builds change in the background.
 */
import { type Duration, Effect } from "effect"
import * as Access from "../Access.ts"
import type { Build, BuildWithSteps } from "../Build.ts"
import { Storage } from "../Storage.ts"

/** Polls the build every 20 ms until `done` holds, failing after `timeout` (default 30 s). */
export const until = (
  id: Build["id"],
  done: (build: BuildWithSteps) => boolean,
  timeout: Duration.Input = "30 seconds"
) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    while (true) {
      const build = yield* storage.getBuild(Access.all, id)
      if (done(build)) return build
      yield* Effect.sleep("20 millis")
    }
  }).pipe(Effect.timeout(timeout))

export const stopped = (id: Build["id"], timeout?: Duration.Input) =>
  until(id, (build) => build.phase === "stopped", timeout)

/** Every stored line of the build's log. */
export const logOf = (id: Build["id"]) =>
  Storage.use((storage) => storage.readLogs(Access.all, id, 0, 100_000)).pipe(
    Effect.map((page) => page.lines)
  )
