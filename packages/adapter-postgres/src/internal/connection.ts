/**
 * The connection pool, and running statements and transactions on it as Effects. Every connection has
 * the storage's schema as its `search_path`, so statements name tables without a schema, and the SQL
 * that core compiles runs as it is.
 */
import { createHash } from "node:crypto"
import type { StorageError } from "@kiln/core"
import { Effect, Exit, Schedule, type Scope } from "effect"
import pg from "pg"
import { classifyError } from "./classifyError.ts"

/** A statement; one with a `name` is prepared once per connection and then only bound and executed. */
export interface Statement {
  readonly name?: string
  readonly text: string
}

/** Runs a statement and answers its rows; a script of several statements answers the last one's. */
export type Run = <Row = unknown>(
  statement: Statement,
  values?: ReadonlyArray<unknown>
) => Effect.Effect<Array<Row>, StorageError.StorageError>

export interface Database {
  /** One statement on a pooled connection, in a transaction of its own: one snapshot, one commit. */
  readonly run: Run
  /**
   * A READ COMMITTED transaction on one connection, committed when the body succeeds and rolled back
   * when it fails; retried whole while it fails as Busy.
   */
  readonly transaction: <A, E>(
    body: (run: Run) => Effect.Effect<A, E>
  ) => Effect.Effect<A, E | StorageError.StorageError>
  /**
   * A connection of the pool, for statements the other calls cannot run (COPY). The caller gives it back
   * with `release()`, or `release(true)` to close it when it may be mid-statement or mid-transaction.
   */
  readonly checkout: Effect.Effect<pg.PoolClient, StorageError.StorageError>
}

export interface Options {
  readonly connectionString: string
  readonly schema: string
  readonly poolSize: number
}

/** The schema as a quoted identifier. */
export const quoteIdentifier = (name: string): string => pg.escapeIdentifier(name)

/** The advisory lock for one purpose in one schema: a 64-bit key, the same in every process. */
export const lockKey = (schema: string, purpose: "migrate" | "claim" | "bootstrap"): string => {
  const digest = createHash("sha256").update(`kiln ${purpose} ${schema}`).digest()
  return digest.readBigInt64BE(0).toString()
}

// The server splits `options` at white space and reads a backslash as an escape.
const searchPath = (schema: string) =>
  `-c search_path=${quoteIdentifier(schema).replace(/[\\\s]/g, (c) => `\\${c}`)}`

// BIGINT (epoch milliseconds, counts, byte sizes) and NUMERIC (the query language's numbers) come back as
// JS numbers: every value Kiln stores in them fits a double.
const numeric = new Set([pg.types.builtins.INT8, pg.types.builtins.NUMERIC])
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    numeric.has(oid) ? Number : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig["getTypeParser"]
}

/** How every connection of a storage is configured; the change listener uses it too. */
export const clientConfig = (options: Omit<Options, "poolSize">): pg.ClientConfig => ({
  connectionString: options.connectionString,
  options: searchPath(options.schema),
  types,
  application_name: "kiln"
})

const busy = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "reason" in error && error.reason === "Busy"

// Postgres has already waited for the lock (or found the deadlock) before reporting Busy; a few short,
// jittered retries of the whole call ride out the conflict without synchronizing the retriers.
const busyRetry = {
  schedule: Schedule.exponential("20 millis").pipe(Schedule.jittered),
  times: 2,
  while: busy
}

/**
 * Runs a call, retrying it whole while it fails as Busy. The first try runs without the retry
 * machinery: it is nearly always the only one, on every request's path.
 */
export const attempt = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.catchIf(effect, busy, () => Effect.retry(effect, busyRetry))

export const runOn =
  (client: pg.Pool | pg.PoolClient): Run =>
  <Row>(statement: Statement, values?: ReadonlyArray<unknown>) =>
    Effect.tryPromise({
      try: () =>
        client.query<Row & pg.QueryResultRow>({
          ...statement,
          ...(values === undefined ? {} : { values: values as Array<unknown> })
        }),
      catch: (cause) => classifyError(cause)
    }).pipe(
      Effect.map((result) => {
        const results = result as pg.QueryResult<Row & pg.QueryResultRow> | Array<pg.QueryResult>
        return (Array.isArray(results) ? results[results.length - 1]!.rows : results.rows) as Array<Row>
      })
    )

// The pool listens for errors only on idle connections. One checked out that breaks between statements (a
// transaction waiting on the event loop when the server goes away) emits an error nobody hears, and Node
// ends the process for it; heard here, it is left to the next statement, which fails on the broken
// connection and releases it as broken. The listener goes with the release, or they would pile up.
const broken = () => {}
const listening = (client: pg.PoolClient): pg.PoolClient => {
  client.on("error", broken)
  const release = client.release
  client.release = (error?: Error | boolean) => {
    client.removeListener("error", broken)
    return release.call(client, error)
  }
  return client
}

/** Opens the pool for the life of the scope; connections are opened as statements need them. */
export const open = (options: Options): Effect.Effect<Database, never, Scope.Scope> =>
  Effect.gen(function* () {
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const pool = new pg.Pool({ ...clientConfig(options), max: options.poolSize })
        // An idle connection that breaks (a server restart, pg_terminate_backend) is dropped by the pool,
        // and the next checkout opens a new one; without a listener the event would crash the process.
        pool.on("error", () => {})
        return pool
      }),
      (pool) => Effect.promise(() => pool.end())
    )
    const run = runOn(pool)

    const checkout = Effect.tryPromise({
      try: () => pool.connect().then(listening),
      catch: (cause) => classifyError(cause, { connecting: true })
    })
    // A connection goes back to the pool only outside a transaction. An interrupted body may have left a
    // statement running on it, so that connection is closed, which ends its transaction too.
    const checkin = (client: pg.PoolClient, exit: Exit.Exit<unknown, unknown>) =>
      Exit.isSuccess(exit)
        ? Effect.sync(() => client.release())
        : Exit.hasInterrupts(exit)
          ? Effect.sync(() => client.release(true))
          : runOn(client)({ text: "ROLLBACK" }).pipe(
              Effect.match({
                onSuccess: () => client.release(),
                onFailure: (error) => client.release(error)
              })
            )

    const transaction = <A, E>(body: (run: Run) => Effect.Effect<A, E>) =>
      attempt(
        Effect.acquireUseRelease(
          checkout,
          (client) => {
            const inTransaction = runOn(client)
            return inTransaction({ text: "BEGIN" }).pipe(
              Effect.andThen(body(inTransaction)),
              Effect.tap(() => inTransaction({ text: "COMMIT" }))
            )
          },
          checkin
        )
      )

    return { run: (statement, values) => attempt(run(statement, values)), transaction, checkout }
  })
