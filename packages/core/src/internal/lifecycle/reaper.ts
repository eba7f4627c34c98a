/**
 * Reaping: every claimed build whose lease expired on the transaction's clock stops as `lost` (or
 * `cancelled` if a cancel was pending), and in the same transaction its log gets `BuildState.reapedLine`,
 * so the log says what became of it; a build is reaped, and so told, once.
 */
import { Effect, Result } from "effect"
import type { Build } from "../../Build.ts"
import * as BuildState from "../../BuildState.ts"
import { buildChanged, type Change } from "../../Change.ts"
import { eventsWritten, type Lifecycle } from "./context.ts"
import { stopWithLine } from "./logs.ts"

export const reapExpired = (lifecycle: Lifecycle) =>
  Effect.fnUntraced(function* () {
    const { reaped, published } = yield* lifecycle.driver
      .transaction((tx) =>
        Effect.gen(function* () {
          const at = yield* tx.now
          const stopped: Array<Build> = []
          const published: Array<Change> = []
          for (const build of yield* tx.expiredLeases(at)) {
            const next = BuildState.transition(build, { _tag: "LeaseExpired", at })
            if (Result.isFailure(next)) continue
            const written = yield* stopWithLine(
              lifecycle,
              tx,
              build,
              next.success,
              (seq) => BuildState.reapedLine(build, next.success, seq),
              at
            )
            stopped.push(written.build)
            if (written.appended !== undefined) published.push(written.appended.change)
            published.push(buildChanged(next.success))
          }
          return { reaped: stopped, published }
        })
      )
      .pipe(
        // The line continues the log as this transaction reads it: it cannot miss.
        Effect.catchTag("LogSequenceGap", Effect.die)
      )
    for (const build of reaped) lifecycle.known.track(build)
    yield* lifecycle.publish(reaped.length === 0 ? published : [...published, eventsWritten])
    return reaped
  })
