/**
 * Kiln's Storage on PostgreSQL, through `pg`: many Kiln processes on one database (DESIGN.md §8).
 *
 * A driver for core's build lifecycle (`StorageDriver`): a transaction locks the build rows it reads, so,
 * as on SQLite, nothing changes between the read and the compare-and-set write. Its fast paths are the
 * claim with its events as one statement on the database clock (`statements.claimOldest`), lease renewals
 * batched across builds into one statement, and an engine's own writes planned from what this process
 * knows, batched across builds with their events (`internal/knownWrites.ts`). The entity queries
 * live in `internal/queries.ts`, the feed's, the endpoints' and the deliveries' in `internal/events.ts`,
 * `internal/webhooks.ts` and `internal/deliveries.ts`.
 *
 * Leases are taken, renewed and reaped on the database's clock, so processes whose clocks disagree agree
 * on them. `changes` hears this storage's writes at once, and every other process's through LISTEN/NOTIFY
 * on a channel of the schema's own.
 */
import { randomUUID } from "node:crypto"
import { type BuildState, type Id, Storage, type StorageError } from "@kiln/core"
import { Batcher, LogBudget, SqlRows as rows, StorageDriver } from "@kiln/core/adapter"
import { Effect, Layer, type Scope } from "effect"
import { clientConfig, open } from "./internal/connection.ts"
import { makeKnownWrites } from "./internal/knownWrites.ts"
import { channelOf, listen, payload } from "./internal/listener.ts"
import { migrate } from "./internal/migrations.ts"
import { makeQueries } from "./internal/queries.ts"
import { statements } from "./internal/statements.ts"
import { makeTransaction } from "./internal/transaction.ts"

export interface Options {
  /** `postgres://user:password@host:port/database` */
  readonly connectionString: string
  /** The schema Kiln's tables live in, created if missing (default `kiln`). */
  readonly schema?: string | undefined
  /** Connections in the pool (default 10); the change listener holds one more. */
  readonly poolSize?: number | undefined
  readonly logBudget?: LogBudget.Budget | undefined
}

/** Opens the pool and the listener for the life of the scope, migrates the schema and builds the service. */
export const make = (
  options: Options
): Effect.Effect<Storage.StorageShape, StorageError.StorageError, Scope.Scope> =>
  Effect.gen(function* () {
    const schema = options.schema ?? "kiln"
    const connection = { connectionString: options.connectionString, schema }
    const db = yield* open({ ...connection, poolSize: options.poolSize ?? 10 })
    yield* migrate(db, schema)
    const { run } = db
    const channel = channelOf(schema)
    // Tags this storage's notifications, so that it skips its own: it has published them already.
    const source = randomUUID()
    const notify = (change: Storage.Change) => [channel, payload(source, [change])]
    const writeKnown = yield* makeKnownWrites(run, channel, source)
    // Renewals that arrive while one is in flight go together in the next statement: a process running
    // hundreds of builds renews them in a few round trips, not one each. A batch that fails answers
    // nothing renewed, and each caller takes the locked path, which says why.
    const heartbeats = yield* Batcher.make({
      max: 500,
      workers: 1,
      failed: undefined,
      run: (
        batch: ReadonlyArray<{
          readonly id: Id.BuildId
          readonly fence: BuildState.Fence
          readonly leaseMs: number
        }>
      ) =>
        Effect.map(
          run<rows.BuildRow>(statements.heartbeatBatch, [
            batch.map(({ id }) => id),
            batch.map(({ fence }) => fence.owner),
            batch.map(({ fence }) => fence.attempt),
            batch.map(({ leaseMs }) => leaseMs)
          ]),
          (renewed) => {
            const byId = new Map(renewed.map((row) => [row.id, rows.toBuild(row)]))
            return batch.map(({ id }) => byId.get(id))
          }
        )
    })
    return yield* StorageDriver.makeStorage(
      {
        name: "PostgreSQL storage",
        transaction: (body) => db.transaction((tx) => body(makeTransaction(tx, schema, notify))),
        // One statement, so one snapshot: the build's workspace, the bookkeeping and the lines.
        readLog: (id, afterSeq, limit) =>
          Effect.map(
            run<{
              readonly workspace_id: string
              readonly stats: rows.LogStatsRow | null
              readonly lines: ReadonlyArray<rows.LogLineRow>
            }>(statements.readLogs, [id, afterSeq, limit]),
            ([row]) =>
              row === undefined
                ? undefined
                : {
                    workspaceId: row.workspace_id as Id.WorkspaceId,
                    stats: row.stats === null ? LogBudget.emptyStats : rows.toLogStats(row.stats),
                    lines: row.lines.map(rows.toLogLine),
                    expiredAt: rows.expiredAtOf(row.stats)
                  }
          ),
        queries: makeQueries(db, schema, notify),
        fastPaths: {
          // One statement: the claim and its events (`statements.claimOldest`).
          claimOldest: (request, eventIds) =>
            Effect.map(
              run<rows.BuildRow>(statements.claimOldest, [
                request.owner,
                request.leaseMs,
                channel,
                source,
                request.max,
                eventIds(request.max)
              ]),
              (claimed) => claimed.map(rows.toBuild)
            ),
          heartbeat: (id, fence, leaseMs) => heartbeats({ id, fence, leaseMs }),
          writeKnown
        },
        listen: (publish) => listen({ config: clientConfig(connection), channel, source, onChange: publish })
      },
      options
    )
  })

/** The Postgres storage as a layer; the pool and the listener are closed when the layer is released. */
export const layer = (options: Options): Layer.Layer<Storage.Storage, StorageError.StorageError> =>
  Layer.effect(Storage.Storage, make(options))
