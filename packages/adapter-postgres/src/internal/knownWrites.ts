/**
 * The PostgreSQL fast path for an owner's writes planned from known state (`FastPaths.writeKnown`): calls
 * that arrive while a statement is in flight go together in the next one (`statements.writeBatch`), each
 * a compare-and-set with the events it announces, so one round trip serves many builds.
 */
import type { Id } from "@kiln/core"
import { Batcher, SqlRows as rows, type StorageDriver } from "@kiln/core/adapter"
import { Effect, type Scope } from "effect"
import type { Run } from "./connection.ts"
import { eventValues } from "./events.ts"
import { valuesOf } from "./sql.ts"
import { statements } from "./statements.ts"
import { columnsOf, lineColumns } from "./transaction.ts"

const transpose = (table: ReadonlyArray<ReadonlyArray<unknown>>): Array<Array<unknown>> =>
  table.length === 0 ? [] : table[0]!.map((_, column) => table.map((row) => row[column]))

const noState = rows.buildStateColumns.map(() => null)
const noStats = rows.logStatsColumns.slice(1).map(() => null)
const stateOf = (build: Parameters<typeof rows.fromBuild>[0]) =>
  valuesOf(rows.fromBuild(build), rows.buildStateColumns)

/** Writes a batch as one statement; answers, per write, whether it was stored. */
const writeBatch = (
  run: Run,
  channel: string,
  source: string,
  writes: ReadonlyArray<StorageDriver.KnownWrite>
) => {
  const lines = writes.flatMap(({ id, append }) =>
    (append?.lines ?? []).map((line) => rows.fromLogLine(id, line))
  )
  const events = writes.flatMap((write) => write.events)
  return Effect.map(
    run<{ readonly id: string }>(statements.writeBatch, [
      writes.map(({ id }) => id),
      writes.map(({ append }) => append?.fence.owner ?? null),
      writes.map(({ append }) => append?.fence.attempt ?? null),
      writes.map(({ append }) => append?.expectedLastSeq ?? null),
      ...transpose(
        writes.map(({ id, append }) =>
          append === undefined
            ? noStats
            : valuesOf(rows.fromLogStats(id, append.stats), rows.logStatsColumns).slice(1)
        )
      ),
      ...transpose(writes.map(({ state }) => (state === undefined ? noState : stateOf(state.after)))),
      ...transpose(writes.map(({ state }) => (state === undefined ? noState : stateOf(state.before)))),
      writes.map(({ changes }) => changes.map((change) => JSON.stringify(change)).join(",")),
      ...columnsOf(lines, ["build_id", ...lineColumns]),
      ...eventValues(events),
      writes.flatMap(({ id, events }) => events.map(() => id)),
      channel,
      source
    ]),
    (written) => {
      const ids = new Set(written.map((row) => row.id))
      return writes.map(({ id }) => ids.has(id))
    }
  )
}

/** Starts the batcher for the life of the scope. */
export const makeKnownWrites = (
  run: Run,
  channel: string,
  source: string
): Effect.Effect<(write: StorageDriver.KnownWrite) => Effect.Effect<boolean>, never, Scope.Scope> =>
  Batcher.make({
    max: 100,
    // One statement at a time, carrying everything queued meanwhile: an engine's slot is free before its
    // build's last writes are stored, so a write that waits costs no throughput, while each statement
    // costs a round trip's CPU on both sides.
    workers: 1,
    failed: false,
    // A build written twice in one statement would be updated twice: a second write waits for a later
    // batch's turn by taking the locking path.
    run: (batch: ReadonlyArray<StorageDriver.KnownWrite>) => {
      const seen = new Set<Id.BuildId>()
      const repeated = batch.map(({ id }) => {
        const again = seen.has(id)
        seen.add(id)
        return again
      })
      if (!repeated.includes(true)) return writeBatch(run, channel, source, batch)
      return Effect.map(
        writeBatch(
          run,
          channel,
          source,
          batch.filter((_, i) => !repeated[i])
        ),
        (answers) => {
          let next = 0
          return repeated.map((again) => (again ? false : answers[next++]!))
        }
      )
    }
  })
