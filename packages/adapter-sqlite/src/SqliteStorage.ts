/**
 * Kiln's Storage on SQLite, through better-sqlite3: the embedded default, one file (or `:memory:`).
 *
 * A driver for core's build lifecycle (`StorageDriver`): every transaction runs synchronously inside one
 * IMMEDIATE transaction, so processes sharing the file queue on its write lock, and a build changes state
 * only by compare-and-set on the phase and attempt it was read with. The entity queries
 * (`internal/queries.ts`) read the clock and mint their ids first, then read and write in one synchronous
 * transaction too.
 *
 * `changes` is in-process: it hears the writes made through this storage. Two processes sharing one file
 * do not hear each other's changes; their engines fall back to polling, since storage stays the truth.
 */
import { type Id, Storage, type StorageError } from "@kiln/core"
import { LogBudget, SqlRows as rows, StorageDriver } from "@kiln/core/adapter"
import { Clock, DateTime, Effect, Layer, Result, type Scope } from "effect"
import { attempt, open, snapshot } from "./internal/connection.ts"
import { migrate } from "./internal/migrations.ts"
import { makeQueries } from "./internal/queries.ts"
import { prepareStatements } from "./internal/statements.ts"
import { transactionOn } from "./internal/transaction.ts"

export interface Options {
  /** The database file, created if missing, or `:memory:` for a private in-memory database. */
  readonly filename: string
  readonly logBudget?: LogBudget.Budget | undefined
  /** How long a write waits for another connection's lock before it fails as Busy. Default 5000. */
  readonly busyTimeoutMs?: number | undefined
}

/** Opens the database for the life of the scope, migrates it and builds the service. */
export const make = (
  options: Options
): Effect.Effect<Storage.StorageShape, StorageError.StorageError, Scope.Scope> =>
  Effect.gen(function* () {
    const db = yield* open({ filename: options.filename, busyTimeoutMs: options.busyTimeoutMs ?? 5000 })
    yield* migrate(db, yield* Clock.currentTimeMillis)
    const sql = yield* attempt(() => prepareStatements(db))
    const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))
    return yield* StorageDriver.makeStorage(
      {
        name: "SQLite storage",
        transaction: transactionOn(db, sql, now),
        // One read transaction: the bookkeeping and the lines are one snapshot.
        readLog: (id, afterSeq, limit) =>
          snapshot(db, () => {
            const build = sql.buildWorkspace.get(id)
            if (build === undefined) return Result.succeed(undefined)
            const stats = sql.logStats.get(id)
            return Result.succeed({
              workspaceId: build.workspace_id as Id.WorkspaceId,
              stats: stats === undefined ? LogBudget.emptyStats : rows.toLogStats(stats),
              lines: sql.logLinesAfter.all(id, afterSeq, limit).map(rows.toLogLine),
              expiredAt: rows.expiredAtOf(stats)
            })
          }),
        queries: makeQueries(db, sql, now)
      },
      options
    )
  })

/** The SQLite storage as a layer; the database is closed when the layer is released. */
export const layer = (options: Options): Layer.Layer<Storage.Storage, StorageError.StorageError> =>
  Layer.effect(Storage.Storage, make(options))
