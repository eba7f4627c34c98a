/**
 * The PostgreSQL driver's transactions, for core's build lifecycle: READ COMMITTED, each read of a build
 * locking its row until the transaction ends, every write publishing its change to other processes
 * (NOTIFY, sent on commit) in the same statement. Events go into the feed in the same transaction
 * (`events.ts`).
 */
import { Change } from "@kiln/core"
import { type Claim, LogBudget, SqlRows as rows, type StorageDriver } from "@kiln/core/adapter"
import { DateTime, Effect } from "effect"
import { lockKey, type Run } from "./connection.ts"
import { insertEventsOn } from "./events.ts"
import { valuesOf } from "./sql.ts"
import { statements } from "./statements.ts"

/** How this storage's writes announce a change: the last two parameters of a statement that publishes one. */
export type Notify = (change: Change.Change) => ReadonlyArray<unknown>

/** The channel, then one payload per change as an array: for a statement that publishes each of many. */
const notifyEach = (notify: Notify, changes: ReadonlyArray<Change.Change>) => {
  const each = changes.map(notify)
  return [each[0]![0], each.map((parameters) => parameters[1])]
}

/** A log line's columns in the order the statements that write lines take them. */
export const lineColumns = ["seq", "ts", "stream", "step", "text"] as const

/** One array per column, as the statements that unnest rows take them, even for no rows. */
export const columnsOf = <Row>(
  table: ReadonlyArray<Row>,
  columns: ReadonlyArray<keyof Row>
): Array<Array<unknown>> => columns.map((column) => table.map((row) => row[column]))

const first = <Row, A>(found: ReadonlyArray<Row>, to: (row: Row) => A): A | undefined =>
  found[0] === undefined ? undefined : to(found[0])

export const makeTransaction = (tx: Run, schema: string, notify: Notify): StorageDriver.Transaction => ({
  now: Effect.map(tx<{ readonly now: number }>(statements.clock), ([row]) => DateTime.makeUnsafe(row!.now)),
  lockBuild: (id) =>
    Effect.map(tx<rows.BuildRow>(statements.lockBuild, [id]), (found) => first(found, rows.toBuild)),
  writeBuild: (before, after) =>
    Effect.map(
      tx(statements.writeBuildState, [
        after.id,
        ...valuesOf(rows.fromBuild(after), rows.buildStateColumns),
        before.phase,
        before.owner,
        before.attempt,
        ...notify(Change.buildChanged(after))
      ]),
      (written) => written.length === 1
    ),
  logStats: (id) =>
    Effect.map(
      tx<rows.LogStatsRow>(statements.logStats, [id]),
      (found) => first(found, rows.toLogStats) ?? LogBudget.emptyStats
    ),
  tailLineSizes: (id, fromSeq, limit) =>
    tx<{ readonly seq: number; readonly bytes: number }>(statements.tailLineSizes, [id, fromSeq, limit]),
  writeLog: (id, write) =>
    Effect.asVoid(
      tx(statements.writeLogs, [
        id,
        ...columnsOf(
          write.lines.map((line) => rows.fromLogLine(id, line)),
          lineColumns
        ),
        write.deleteFrom,
        write.deleteThrough,
        ...valuesOf(rows.fromLogStats(id, write.stats), rows.logStatsColumns).slice(1),
        ...notify(write.change)
      ])
    ),
  upsertStep: (id, step) =>
    Effect.asVoid(tx(statements.upsertStep, valuesOf(rows.fromBuildStep(id, step), rows.stepColumns))),
  insertEvents: insertEventsOn(tx, notify),
  versionsToBuild: (ids) =>
    Effect.map(tx<rows.AppVersionRow>(statements.versionsToBuild, [ids]), (found) => {
      const byId = new Map(found.map((row) => [row.id, rows.toAppVersion(row)]))
      return ids.map((id) => byId.get(id))
    }),
  sourceEventWorkspace: (id) =>
    Effect.map(
      tx<rows.SourceEventRow>(statements.sourceEventById, [id]),
      (found) => first(found, rows.toSourceEvent)?.workspaceId
    ),
  existingBuild: (lookup) =>
    Effect.gen(function* () {
      // An idempotency key is unique per workspace: keyed creations in one workspace take turns.
      if (lookup.idempotencyKey !== null) yield* tx(statements.lockWorkspace, [lookup.workspaceId])
      const found = yield* tx<rows.BuildRow>(statements.existingBuild, [
        lookup.workspaceId,
        lookup.idempotencyKey,
        lookup.appId,
        lookup.sourceEventId
      ])
      return first(found, rows.toBuild)
    }),
  nextSequences: (takes) =>
    Effect.map(
      tx<{ readonly id: string; readonly build_sequence: number | string }>(statements.nextBuildSequences, [
        takes.map(({ appId }) => appId),
        takes.map(({ count }) => count)
      ]),
      (taken) => {
        const last = new Map(taken.map((row) => [row.id, Number(row.build_sequence)]))
        return takes.map(({ appId, count }) => last.get(appId)! - count + 1)
      }
    ),
  insertBuilds: (builds) =>
    builds.length === 0
      ? Effect.void
      : Effect.asVoid(
          tx(statements.insertBuilds, [
            JSON.stringify(builds.map(rows.fromBuild)),
            ...notifyEach(notify, builds.map(Change.buildChanged))
          ])
        ),
  // Claims with caps take turns on a transaction-scoped advisory lock of the schema: under it they count the
  // active builds, choose and claim, so two processes can never both count "0 active" for one app and both
  // claim. SERIALIZABLE would abort and retry exactly when engines claim together; the lock queues them
  // for the few milliseconds a claim takes. (Claims without caps never wait for it.)
  lockClaims: Effect.asVoid(tx(statements.advisoryLock, [lockKey(schema, "claim")])),
  activeCounts: Effect.map(
    tx<{ readonly workspace_id: string; readonly entity_id: string; readonly active: number }>(
      statements.activeCounts
    ),
    (counted): Claim.ActiveCounts => {
      const byWorkspace = new Map<string, number>()
      const byApp = new Map<string, number>()
      for (const { workspace_id, entity_id, active } of counted) {
        byApp.set(entity_id, active)
        byWorkspace.set(workspace_id, (byWorkspace.get(workspace_id) ?? 0) + active)
      }
      return { byWorkspace, byApp }
    }
  ),
  logsToExpire: ({ appId, stoppedBefore, limit }) =>
    Effect.map(
      tx<rows.BuildRow>(statements.logsToExpire, [appId, DateTime.toEpochMillis(stoppedBefore), limit]),
      (found) => found.map(rows.toBuild)
    ),
  expireLogs: (ids, at) => Effect.asVoid(tx(statements.expireLogs, [ids, DateTime.toEpochMillis(at)])),
  buildsToDelete: ({ appId, keep, createdBefore, limit }) =>
    Effect.map(
      tx<rows.BuildRow>(statements.buildsToDelete, [
        appId,
        keep ?? Number.MAX_SAFE_INTEGER,
        createdBefore === null ? null : DateTime.toEpochMillis(createdBefore),
        limit
      ]),
      (found) => found.map(rows.toBuild)
    ),
  deleteBuilds: (builds) =>
    Effect.andThen(
      tx(statements.deleteBuilds, [builds.map((build) => build.id)]),
      tx(statements.deleteUnbuiltVersions, [[...new Set(builds.map((build) => build.appVersionId))]])
    ).pipe(Effect.asVoid),
  queuedOldest: (limit) =>
    Effect.map(tx<rows.BuildRow>(statements.queuedOldest, [limit]), (found) => found.map(rows.toBuild)),
  expiredLeases: (at) =>
    Effect.map(tx<rows.BuildRow>(statements.expiredLeases, [DateTime.toEpochMillis(at)]), (found) =>
      found.map(rows.toBuild)
    )
})
