/**
 * Expired leases reaped, and what runs of builds no longer active anywhere left in the runner swept away
 * (containers, images and files of a crashed process, or of a run whose lease was lost).
 */
import { Effect, Schedule } from "effect"
import * as Access from "../../Access.ts"
import type { RunnerShape } from "../../Runner.ts"
import type { StorageShape } from "../../Storage.ts"
import { activeQuery } from "./activeQuery.ts"
import { logProgress } from "./progress.ts"
import type { RunningBuilds } from "./runningBuilds.ts"

export interface SweepInput {
  readonly storage: Pick<StorageShape, "listBuilds">
  readonly runner: Pick<RunnerShape, "sweep">
  readonly builds: Pick<RunningBuilds, "ids">
}

/** Removes what the runner holds for builds that are no longer active anywhere. */
export const sweepLeftovers = (input: SweepInput): Effect.Effect<void> =>
  Effect.gen(function* () {
    // Asked after the runner has listed its resources, so a claim made meanwhile is seen.
    const activeAmong = (ids: ReadonlyArray<string>) =>
      ids.length === 0
        ? Effect.succeed(new Set<string>())
        : input.storage.listBuilds(Access.all, activeQuery(ids)).pipe(
            Effect.map((result) => new Set<string>([...result.rows.map((b) => b.id), ...input.builds.ids()])),
            // Unsure is active: a sweep that cannot ask removes nothing.
            Effect.orElseSucceed(() => new Set(ids))
          )
    const removed = yield* input.runner.sweep(activeAmong)
    if (removed.length > 0) {
      yield* Effect.logInfo(`swept ${removed.length} leftovers`).pipe(
        Effect.annotateLogs({ resources: removed.map((r) => `${r.kind}:${r.id.slice(0, 12)}`).join(" ") })
      )
    }
  }).pipe(Effect.catch((error) => Effect.logWarning("sweep failed", error)))

export interface ReaperInput extends SweepInput {
  readonly storage: Pick<StorageShape, "listBuilds" | "reapExpired">
  readonly reapIntervalMs: number
}

/** Reaps expired leases every `reapIntervalMs`, sweeping leftovers after a reap that found some. */
export const reapLoop = (input: ReaperInput): Effect.Effect<void> =>
  Effect.gen(function* () {
    const reaped = yield* input.storage.reapExpired()
    for (const build of reaped)
      yield* logProgress(`build reaped: ${build.outcome}`, build, { owner: build.owner })
    if (reaped.length > 0) yield* sweepLeftovers(input)
  }).pipe(
    Effect.catch((error) => Effect.logWarning("reap failed", error)),
    Effect.repeat(Schedule.spaced(`${input.reapIntervalMs} millis`)),
    Effect.asVoid
  )
