/**
 * What reaches the engine from other processes: a queued build wakes the claim loop, a cancel request stops
 * the build's run here. Notifications are a hint; the poll is the truth for processes that share storage
 * without them.
 */
import { Effect, Schedule, type Scope, Stream } from "effect"
import * as Access from "../../Access.ts"
import type { Change } from "../../Change.ts"
import type { StorageShape } from "../../Storage.ts"
import { activeQuery } from "./activeQuery.ts"
import type { RunningBuilds } from "./runningBuilds.ts"

export interface ChangeWatchInput {
  readonly storage: Pick<StorageShape, "changes" | "listBuilds">
  readonly builds: Pick<RunningBuilds, "ids" | "cancel">
  /** Wakes the claim loop. */
  readonly wake: Effect.Effect<void>
  readonly cancelPollMs: number
}

/** Subscribes to storage's notifications now and follows them in a fiber of the scope. */
export const followChanges = (input: ChangeWatchInput): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const changes = yield* input.storage.changes.pipe(
      Effect.catch((error) =>
        Effect.logWarning("no change notifications: polling only", error).pipe(Effect.as(Stream.empty))
      )
    )
    const onChange = (change: Change) =>
      Effect.gen(function* () {
        if (change._tag !== "BuildChanged") return
        if (change.phase === "queued") yield* input.wake
        if (change.cancelRequested) yield* input.builds.cancel(change.buildId)
      })
    yield* Effect.forkScoped(Stream.runForEach(changes, onChange))
  })

/** Asks storage, every `cancelPollMs`, whether a build running here has a cancel request. */
export const pollCancels = (input: ChangeWatchInput): Effect.Effect<void> =>
  Effect.gen(function* () {
    const ids = input.builds.ids()
    if (ids.length === 0) return
    const result = yield* input.storage.listBuilds(Access.all, activeQuery(ids))
    for (const build of result.rows) {
      if (build.cancelRequestedAt !== null) yield* input.builds.cancel(build.id)
    }
  }).pipe(
    Effect.catch((error) => Effect.logWarning("cancel poll failed", error)),
    Effect.repeat(Schedule.spaced(`${input.cancelPollMs} millis`)),
    Effect.asVoid
  )
