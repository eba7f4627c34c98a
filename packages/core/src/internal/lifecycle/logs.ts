/**
 * A build's log: appends under the budget (DESIGN.md §5), by an owner holding the build, and reads of a
 * page with the truncation line where lines were dropped.
 */
import { type DateTime, Effect } from "effect"
import * as Access from "../../Access.ts"
import type { Build } from "../../Build.ts"
import * as BuildState from "../../BuildState.ts"
import type { Change } from "../../Change.ts"
import type { BuildId } from "../../Id.ts"
import * as LogBudget from "../../LogBudget.ts"
import { byteLength, type LogLine, type LogPage } from "../../LogLine.ts"
import type { Transaction } from "../../StorageDriver.ts"
import { NotFound, type StorageError } from "../../StorageError.ts"
import { type Lifecycle, now, writeState } from "./context.ts"

/**
 * A line as every storage keeps it: PostgreSQL text cannot hold NUL, so U+FFFD stands in for it on every
 * adapter alike, and the budget counts what is stored.
 */
export const storable = (line: LogLine): LogLine =>
  line.text.includes("\u0000") ? { ...line, text: line.text.replaceAll("\u0000", "\uFFFD") } : line

/**
 * The oldest tail lines an append may trim, stored and then fresh, for `LogBudget.planTrim`. Stored lines
 * come in growing batches until they cover the excess: planTrim reads only as far as it must.
 */
const trimOf = (tx: Transaction, id: BuildId, plan: LogBudget.AppendPlan, at: DateTime.Utc) =>
  Effect.gen(function* () {
    const from = LogBudget.trimFromSeq(plan.stats)
    let stored: ReadonlyArray<{ readonly seq: number; readonly bytes: number }> = []
    for (let batch = plan.fresh.length + 64; ; batch *= 4) {
      stored = yield* tx.tailLineSizes(id, from, batch)
      const bytes = stored.reduce((sum, line) => sum + line.bytes, 0)
      if (stored.length < batch || bytes >= plan.excessBytes) break
    }
    const fresh = plan.fresh
      .filter((line) => line.seq >= from)
      .map((line) => ({ seq: line.seq, bytes: byteLength(line.text) }))
    return { from, trim: LogBudget.planTrim(plan.stats, plan.excessBytes, [...stored, ...fresh], at) }
  })

/**
 * Appends lines to the log of a build this transaction holds, trimming it to its budget; answers the
 * change and the new bookkeeping, or none for a repeat.
 */
export const appendLocked = (
  lifecycle: Lifecycle,
  tx: Transaction,
  build: Build,
  stored: LogBudget.Stats,
  lines: ReadonlyArray<LogLine>,
  at: DateTime.Utc
) =>
  Effect.gen(function* () {
    const id = build.id
    const plan = LogBudget.planAppend(id, stored, lines, lifecycle.budget)
    if (plan instanceof LogBudget.LogSequenceGap) return yield* plan
    if (plan.fresh.length === 0) return undefined
    const { from, trim } =
      plan.excessBytes > 0 ? yield* trimOf(tx, id, plan, at) : { from: 1, trim: undefined }
    // Stored lines in [from, through] are deleted; fresh ones there are never written.
    const through = trim?.deleteThroughSeq ?? 0
    const stats = trim?.stats ?? plan.stats
    const change: Change = {
      _tag: "LogsAppended",
      buildId: id,
      workspaceId: build.workspaceId,
      lastSeq: stats.lastSeq
    }
    yield* tx.writeLog(id, {
      lines: plan.fresh.filter((line) => line.seq < from || line.seq > through),
      deleteFrom: from,
      deleteThrough: through,
      stats,
      change
    })
    return { change, stats }
  })

/**
 * Stops a locked build with a system line that no run will write (a reap, a give-back that stops): the line
 * `lineAt` makes as the one after the log's last, then the state, in the transaction.
 */
export const stopWithLine = (
  lifecycle: Lifecycle,
  tx: Transaction,
  build: Build,
  next: Build,
  lineAt: (seq: number) => LogLine,
  at: DateTime.Utc
) =>
  Effect.gen(function* () {
    const stats = yield* tx.logStats(build.id)
    const appended = yield* appendLocked(lifecycle, tx, build, stats, [lineAt(stats.lastSeq + 1)], at)
    return { build: yield* writeState(lifecycle, tx, build, next), appended }
  })

/** The build an owner writes to, locked, while its fence holds it. */
export const lockFenced = (
  tx: Transaction,
  id: BuildId,
  fence: BuildState.Fence
): Effect.Effect<Build, NotFound | BuildState.LeaseLost | StorageError> =>
  Effect.flatMap(
    tx.lockBuild(id),
    (build): Effect.Effect<Build, NotFound | BuildState.LeaseLost> =>
      build === undefined
        ? Effect.fail(NotFound.of("build", id))
        : Effect.fromResult(BuildState.checkFence(build, fence))
  )

/** An owner's append, in a transaction: the build locked, its fence checked, its bookkeeping read. */
export const appendInTransaction = (
  lifecycle: Lifecycle,
  tx: Transaction,
  id: BuildId,
  fence: BuildState.Fence,
  lines: ReadonlyArray<LogLine>,
  at: DateTime.Utc
) =>
  Effect.gen(function* () {
    const build = yield* lockFenced(tx, id, fence)
    const appended = yield* appendLocked(lifecycle, tx, build, yield* tx.logStats(id), lines, at)
    return { build, appended }
  })

export const appendLogs = (lifecycle: Lifecycle) =>
  Effect.fnUntraced(function* (id: BuildId, fence: BuildState.Fence, batch: ReadonlyArray<LogLine>) {
    const { driver, known } = lifecycle
    const lines = batch.map(storable)
    const planned = driver.fastPaths?.writeKnown && known.planAppend(id, fence, lines, lifecycle.budget)
    if (
      planned &&
      (yield* driver.fastPaths!.writeKnown!({
        id,
        append: planned.append,
        events: [],
        changes: [planned.change]
      }))
    ) {
      known.trackLog(planned.build, planned.append.stats)
      return yield* lifecycle.publish([planned.change])
    }
    const at = yield* now
    const { build, appended } = yield* driver.transaction((tx) =>
      appendInTransaction(lifecycle, tx, id, fence, lines, at)
    )
    if (appended === undefined) return
    known.trackLog(build, appended.stats)
    yield* lifecycle.publish([appended.change])
  })

export const readLogs =
  (lifecycle: Lifecycle) =>
  (
    access: Access.Access,
    id: BuildId,
    afterSeq: number,
    limit: number
  ): Effect.Effect<LogPage, NotFound | StorageError> =>
    Effect.flatMap(lifecycle.driver.readLog(id, afterSeq, Math.max(0, limit)), (stored) =>
      stored === undefined || !Access.allows(access, stored.workspaceId)
        ? Effect.fail(NotFound.of("build", id))
        : Effect.succeed({
            // An expired log has no lines left, and no truncation line to stand for them either.
            lines:
              stored.expiredAt === null ? LogBudget.page(stored.lines, stored.stats, afterSeq, limit) : [],
            truncated: stored.stats.droppedLines > 0,
            lastSeq: stored.stats.lastSeq,
            expiredAt: stored.expiredAt
          })
    )
