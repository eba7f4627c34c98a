/**
 * Opening the database and running driver calls as Effects. better-sqlite3 is synchronous, so a
 * transaction runs start to finish without yielding: within a process nothing interleaves with it, and
 * across processes SQLite's file locks (waited on for `busy_timeout`) serialize writers.
 */
import { closeSync, constants, openSync } from "node:fs"
import type { StorageError } from "@kiln/core"
import Database from "better-sqlite3"
import { Effect, Result, Schedule, type Scope } from "effect"
import { classifyError } from "./classifyError.ts"

export type Connection = Database.Database

// The driver has already waited `busy_timeout` before reporting Busy; a few short, jittered retries of the
// whole call ride out a writer that held the lock a little longer, without synchronizing the retriers.
const busyRetry = {
  schedule: Schedule.exponential("20 millis").pipe(Schedule.jittered),
  times: 3,
  while: (error: StorageError.StorageError) => error.reason === "Busy"
}

// After a first try that was Busy: the driver waited already, so the next try comes at once.
const retried = <A>(run: () => A): Effect.Effect<A, StorageError.StorageError> =>
  Effect.try({ try: run, catch: (cause) => classifyError(cause) }).pipe(
    Effect.retry({ ...busyRetry, times: busyRetry.times - 1 })
  )

/**
 * Runs driver calls, classifying whatever they throw; the whole call is retried while it is Busy. The
 * first try runs without the retry machinery: it is nearly always the only one, on every request's path.
 */
export const attempt = <A>(run: () => A): Effect.Effect<A, StorageError.StorageError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(run())
    } catch (cause) {
      const error = classifyError(cause)
      return busyRetry.while(error) ? retried(run) : Effect.fail(error)
    }
  })

type Transaction = Database.Transaction<(body: () => unknown) => unknown>

// One transaction wrapper per connection: better-sqlite3 builds a new one (closures and all) per
// `db.transaction` call, which shows up on every read of a busy server.
const transactions = new WeakMap<Connection, Transaction>()

const transactionOf = (db: Connection): Transaction => {
  let transaction = transactions.get(db)
  if (transaction === undefined) {
    transaction = db.transaction((body: () => unknown) => body())
    transactions.set(db, transaction)
  }
  return transaction
}

/** Carries a body's failure out of its transaction, which rolls back as it passes. */
class RolledBack {
  readonly result: Result.Result<unknown, unknown>
  constructor(result: Result.Result<unknown, unknown>) {
    this.result = result
  }
}

/**
 * A write transaction. It begins IMMEDIATE, taking the write lock up front, so a concurrent writer waits
 * for the lock instead of failing to upgrade a read lock (SQLITE_BUSY_SNAPSHOT in WAL mode, which the busy
 * timeout does not cover). The body answers with a `Result`; a failure rolls back whatever the body wrote
 * before it, so a domain failure commits nothing.
 */
export const immediate = <A, E>(
  db: Connection,
  body: () => Result.Result<A, E>
): Effect.Effect<A, E | StorageError.StorageError> =>
  Effect.flatMap(
    attempt(() => {
      try {
        return transactionOf(db).immediate(() => {
          const result = body()
          if (Result.isFailure(result)) throw new RolledBack(result)
          return result
        }) as Result.Result<A, E>
      } catch (cause) {
        if (cause instanceof RolledBack) return cause.result as Result.Result<A, E>
        throw cause
      }
    }),
    (result) => Effect.fromResult(result)
  )

/** A read transaction: every statement in the body sees the same snapshot of the database. */
export const snapshot = <A, E>(
  db: Connection,
  body: () => Result.Result<A, E>
): Effect.Effect<A, E | StorageError.StorageError> =>
  Effect.flatMap(
    attempt(() => transactionOf(db).deferred(body) as Result.Result<A, E>),
    (result) => Effect.fromResult(result)
  )

/**
 * Creates a missing database file with mode 0600 (only its owner reads it: it holds the logs), so that
 * SQLite, which gives the `-wal` and `-shm` files the database file's mode, makes them 0600 too. An
 * existing file keeps its mode. Special names (`:memory:`, `""` for a temporary database) have no file.
 */
const createPrivately = (filename: string) => {
  if (filename === "" || filename === ":memory:") return
  try {
    closeSync(openSync(filename, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600))
  } catch {
    // Already there, or not creatable: opening it next reports the second in SQLite's own words.
  }
}

/** Opens the database for the life of the scope and configures the connection. */
export const open = (options: {
  readonly filename: string
  readonly busyTimeoutMs: number
}): Effect.Effect<Connection, StorageError.StorageError, Scope.Scope> =>
  Effect.gen(function* () {
    createPrivately(options.filename)
    const db = yield* Effect.acquireRelease(
      Effect.try({
        // `timeout` is SQLite's busy_timeout; it is set as the connection opens, so that even switching
        // the journal mode below waits for a process that is opening the same file.
        try: () => new Database(options.filename, { timeout: options.busyTimeoutMs }),
        catch: (cause) => classifyError(cause, { opening: true })
      }),
      (db) => Effect.sync(() => db.close())
    )
    yield* attempt(() => {
      // WAL lets readers proceed while one writer commits; an in-memory database has no file to log to.
      if (!db.memory) db.pragma("journal_mode = WAL")
      // In WAL mode NORMAL only syncs at checkpoints: a power loss can drop the last commits, never
      // corrupt the file.
      db.pragma("synchronous = NORMAL")
      db.pragma("foreign_keys = ON")
    })
    return db
  })
