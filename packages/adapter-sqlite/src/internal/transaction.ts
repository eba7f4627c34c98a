/**
 * The SQLite driver's transactions, for core's build lifecycle. A body runs synchronously inside one
 * IMMEDIATE transaction (its statements are synchronous better-sqlite3 calls), so nothing else on the
 * connection can fall into it, and processes sharing the file queue on its write lock. A failure rolls
 * back; a `StorageError` that says Busy is thrown through, so the whole transaction is retried.
 */
import { StorageError } from "@kiln/core"
import { LogBudget, SqlRows as rows, type StorageDriver } from "@kiln/core/adapter"
import { Cause, DateTime, Effect, Exit, Result } from "effect"
import { type Connection, immediate } from "./connection.ts"
import { insertEvents } from "./events.ts"
import type { prepareStatements } from "./statements.ts"

type Statements = ReturnType<typeof prepareStatements>

/** Active-build counts keyed by workspace or app, as `Claim.select` takes them. */
const counts = (grouped: ReadonlyArray<{ readonly key: string; readonly active: number }>) =>
  new Map(grouped.map(({ key, active }) => [key, active]))

/**
 * Of the builds an idempotency key and a source event point at, the one created first: it is the build
 * the first of those requests created, which every repeat of either answers with.
 */
const earliest = (a: rows.BuildRow | undefined, b: rows.BuildRow | undefined): rows.BuildRow | undefined =>
  a === undefined || b === undefined
    ? (a ?? b)
    : a.created_at < b.created_at || (a.created_at === b.created_at && a.id <= b.id)
      ? a
      : b

const makeTransaction = (sql: Statements, at: DateTime.Utc): StorageDriver.Transaction => ({
  now: Effect.succeed(at),
  lockBuild: (id) =>
    Effect.sync(() => {
      const row = sql.buildById.get(id)
      return row === undefined ? undefined : rows.toBuild(row)
    }),
  writeBuild: (before, after) =>
    Effect.sync(
      () =>
        sql.writeBuildState.run({
          ...rows.fromBuild(after),
          expected_phase: before.phase,
          expected_attempt: before.attempt
        }).changes === 1
    ),
  logStats: (id) =>
    Effect.sync(() => {
      const row = sql.logStats.get(id)
      return row === undefined ? LogBudget.emptyStats : rows.toLogStats(row)
    }),
  tailLineSizes: (id, fromSeq, limit) => Effect.sync(() => sql.tailLineSizes.all(id, fromSeq, limit)),
  writeLog: (id, write) =>
    Effect.sync(() => {
      for (const line of write.lines) sql.insertLogLine.run(rows.fromLogLine(id, line))
      if (write.deleteThrough >= write.deleteFrom)
        sql.deleteLogLines.run(id, write.deleteFrom, write.deleteThrough)
      sql.upsertLogStats.run(rows.fromLogStats(id, write.stats))
    }),
  upsertStep: (id, step) =>
    Effect.sync(() => {
      sql.upsertStep.run(rows.fromBuildStep(id, step))
    }),
  insertEvents: (events) => Effect.sync(() => insertEvents(sql, events)),
  versionsToBuild: (ids) =>
    Effect.sync(() =>
      ids.map((id) => {
        const row = sql.appVersionById.get(id)
        return row === undefined ? undefined : rows.toAppVersion(row)
      })
    ),
  sourceEventWorkspace: (id) =>
    Effect.sync(() => {
      const row = sql.sourceEventById.get(id)
      return row === undefined ? undefined : rows.toSourceEvent(row).workspaceId
    }),
  existingBuild: (lookup) =>
    Effect.sync(() => {
      const row = earliest(
        lookup.idempotencyKey === null
          ? undefined
          : sql.buildByIdempotencyKey.get(lookup.workspaceId, lookup.idempotencyKey),
        lookup.sourceEventId === null
          ? undefined
          : sql.buildBySourceEvent.get(lookup.appId, lookup.sourceEventId)
      )
      return row === undefined ? undefined : rows.toBuild(row)
    }),
  nextSequences: (takes) =>
    Effect.sync(() =>
      takes.map(({ appId, count }) => sql.nextBuildSequence.get(count, appId)!.build_sequence - count + 1)
    ),
  insertBuilds: (builds) =>
    Effect.sync(() => {
      for (const build of builds) sql.insertBuild.run(rows.fromBuild(build))
    }),
  activeCounts: Effect.sync(() => ({
    byWorkspace: counts(sql.activeByWorkspace.all()),
    byApp: counts(sql.activeByApp.all())
  })),
  logsToExpire: ({ appId, stoppedBefore, limit }) =>
    Effect.sync(() =>
      sql.logsToExpire
        .all({ app: appId, before: DateTime.toEpochMillis(stoppedBefore), limit })
        .map(rows.toBuild)
    ),
  expireLogs: (ids, at) =>
    Effect.sync(() => {
      for (const id of ids) {
        sql.deleteBuildLog.run(id)
        sql.expireLog.run(id, DateTime.toEpochMillis(at))
      }
    }),
  buildsToDelete: ({ appId, keep, createdBefore, limit }) =>
    Effect.sync(() =>
      sql.buildsToDelete
        .all({
          app: appId,
          keep: keep ?? Number.MAX_SAFE_INTEGER,
          before: createdBefore === null ? null : DateTime.toEpochMillis(createdBefore),
          limit
        })
        .map(rows.toBuild)
    ),
  deleteBuilds: (builds) =>
    Effect.sync(() => {
      for (const { id } of builds) {
        sql.deleteBuildLog.run(id)
        sql.deleteLogStats.run(id)
        sql.deleteSteps.run(id)
        sql.deleteBuild.run(id)
      }
      for (const version of new Set(builds.map((build) => build.appVersionId)))
        sql.deleteUnbuiltVersion.run({ id: version })
    }),
  queuedOldest: (limit) => Effect.sync(() => sql.queuedOldest.all(limit).map(rows.toBuild)),
  expiredLeases: (now) =>
    Effect.sync(() => sql.expiredLeases.all(DateTime.toEpochMillis(now)).map(rows.toBuild))
})

/** Runs a body as one IMMEDIATE transaction, with the caller's services (its clock). */
export const transactionOn =
  (db: Connection, sql: Statements, now: Effect.Effect<DateTime.Utc>) =>
  <A, Err>(body: (tx: StorageDriver.Transaction) => Effect.Effect<A, Err>) =>
    Effect.flatMap(Effect.context<never>(), (context) =>
      Effect.flatMap(now, (at) =>
        immediate(db, (): Result.Result<A, Err> => {
          const exit = Effect.runSyncExitWith(context)(body(makeTransaction(sql, at)))
          if (Exit.isSuccess(exit)) return Result.succeed(exit.value)
          const error = Cause.findError(exit.cause)
          if (Result.isFailure(error)) throw Cause.squash(exit.cause)
          if (error.success instanceof StorageError.StorageError) throw error.success
          return Result.fail(error.success)
        })
      )
    )
