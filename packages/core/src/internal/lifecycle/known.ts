/**
 * What this process last wrote of the builds it drives — their state and their log bookkeeping — for a
 * driver that can store an owner's writes planned from it (`FastPaths.writeKnown`): the engine's own
 * transitions and appends then need no locked read. A write that misses because the row changed
 * meanwhile (a cancel, the reaper, another process) takes the locking path. Forgotten when the build
 * stops, and bounded in case a build never does here.
 */
import { Result } from "effect"
import type { Build } from "../../Build.ts"
import * as BuildState from "../../BuildState.ts"
import type { Change } from "../../Change.ts"
import type { BuildId } from "../../Id.ts"
import * as LogBudget from "../../LogBudget.ts"
import type { LogLine } from "../../LogLine.ts"
import type { KnownWrite } from "../../StorageDriver.ts"

const capacity = 10_000

export interface KnownAppend {
  readonly build: Build
  readonly append: NonNullable<KnownWrite["append"]>
  readonly change: Change
}

export interface Known {
  /** Whether anything is kept: only for a driver with `writeKnown`. */
  readonly enabled: boolean
  /** Records the state this process wrote or read of a build. */
  readonly track: (build: Build) => void
  /** Records the log bookkeeping this process wrote for a build it holds. */
  readonly trackLog: (build: Build, stats: LogBudget.Stats) => void
  /** The append of `lines` planned from what is known, when it trims nothing; else none. */
  readonly planAppend: (
    id: BuildId,
    fence: BuildState.Fence,
    lines: ReadonlyArray<LogLine>,
    budget: LogBudget.Budget
  ) => KnownAppend | undefined
  /**
   * The state change `events` make in turn to the build as known; else none. Only the last state is
   * written and announced: a change is a hint to read the build, which shows the last.
   */
  readonly planTransition: (
    id: BuildId,
    events: ReadonlyArray<BuildState.BuildEvent>
  ) => { readonly before: Build; readonly after: Build } | undefined
}

export const makeKnown = (enabled: boolean): Known => {
  const states = new Map<BuildId, Build>()
  const logs = new Map<BuildId, { readonly build: Build; readonly stats: LogBudget.Stats }>()
  const remember = <V>(map: Map<BuildId, V>, id: BuildId, value: V) => {
    map.delete(id)
    if (map.size >= capacity) map.delete(map.keys().next().value!)
    map.set(id, value)
  }
  return {
    enabled,
    track: (build) => {
      if (!enabled) return
      if (build.phase === "stopped") {
        states.delete(build.id)
        logs.delete(build.id)
      } else remember(states, build.id, build)
    },
    trackLog: (build, stats) => {
      if (enabled && build.phase !== "stopped") remember(logs, build.id, { build, stats })
    },
    planAppend: (id, fence, lines, budget) => {
      const entry = logs.get(id)
      if (entry === undefined || Result.isFailure(BuildState.checkFence(entry.build, fence))) return undefined
      const plan = LogBudget.planAppend(id, entry.stats, lines, budget)
      if (plan instanceof LogBudget.LogSequenceGap || plan.fresh.length === 0 || plan.excessBytes > 0) {
        return undefined
      }
      return {
        build: entry.build,
        append: { fence, expectedLastSeq: entry.stats.lastSeq, lines: plan.fresh, stats: plan.stats },
        change: {
          _tag: "LogsAppended",
          buildId: id,
          workspaceId: entry.build.workspaceId,
          lastSeq: plan.stats.lastSeq
        }
      }
    },
    planTransition: (id, events) => {
      const before = states.get(id)
      if (before === undefined) return undefined
      let after = before
      for (const event of events) {
        const next = BuildState.transition(after, event)
        if (Result.isFailure(next)) return undefined
        after = next.success
      }
      return { before, after }
    }
  }
}
