/**
 * The feed on PostgreSQL. An event is stored by the transaction of the change it describes, under that
 * transaction's id (`pg_current_xact_id()`, taken before it commits) and an insertion counter; the feed's
 * order is that pair. Transactions commit in another order than they took ids, so a reader returns only
 * events of transactions older than every one still running (`pg_snapshot_xmin`): every event that will
 * ever sort before a cursor it hands out has committed by then, so none appears behind it later. A
 * transaction that stays open holds the feed back until it ends, never past it.
 *
 * A cursor is `<xid>.<seq>`; one of the other form (`<n>`) is read as the start of transaction `n`.
 */
import type { Change, Event, Id, StorageError } from "@kiln/core"
import type { StorageDriver } from "@kiln/core/adapter"
import { DateTime, Effect } from "effect"
import type { Run } from "./connection.ts"
import { prepared } from "./sql.ts"
import type { Notify } from "./transaction.ts"

/** An event as the feed reads it: with its cursor. */
export interface EventRow {
  readonly cursor: string
  readonly id: string
  readonly workspace_id: string
  readonly type: string
  readonly subject: string
  readonly timestamp: number
  readonly data: string
}

/** The columns of `EventRow`, for the statements that read events. */
export const eventRowColumns = `xid::text || '.' || seq::text AS cursor, id, workspace_id, type, subject, "timestamp", data`

/** The condition a feed read adds: only events of transactions older than every one still running. */
export const settled = (alias?: string) =>
  `${alias === undefined ? "" : `${alias}.`}xid < pg_snapshot_xmin(pg_current_snapshot())`

export const toEvent = (row: EventRow): Event.Event => ({
  id: row.id as Id.EventId,
  type: row.type as Event.Type,
  timestamp: DateTime.makeUnsafe(row.timestamp),
  workspaceId: row.workspace_id as Id.WorkspaceId,
  subject: row.subject,
  data: JSON.parse(row.data)
})

const toStored = (row: EventRow): Event.Stored => ({ ...toEvent(row), cursor: row.cursor as Event.Cursor })

/** The columns an insert of events takes, with their types, in the order of `eventValues`. */
export const eventColumns = [
  ["id", "text"],
  ["workspace_id", "text"],
  ["type", "text"],
  ["subject", "text"],
  ['"timestamp"', "bigint"],
  ["data", "text"]
] as const

/** One array per column of `eventColumns`. */
export const eventValues = (events: ReadonlyArray<Event.Event>): Array<Array<unknown>> => [
  events.map((event) => event.id),
  events.map((event) => event.workspaceId),
  events.map((event) => event.type),
  events.map((event) => event.subject),
  events.map((event) => DateTime.toEpochMillis(event.timestamp)),
  events.map((event) => JSON.stringify(event.data))
]

/** The hint every write of events or deliveries publishes. */
export const eventsWritten: Change.Change = { _tag: "EventsWritten" }

const eventNames = eventColumns.map(([name]) => name).join(", ")

/**
 * Inserts the events in the arrays from parameter `from` on (`eventColumns`), in their order: the counter
 * follows it. With `onlyOf`, a subquery of build ids, one more array gives each event's build, and only
 * the events of those builds are inserted.
 */
export const insertEventRows = (from: number, onlyOf?: string) => {
  const arrays = eventColumns.map(([, type], i) => `$${from + i}::${type}[]`)
  const build = onlyOf === undefined ? "" : `, $${from + eventColumns.length}::text[]`
  return `INSERT INTO events (${eventNames})
   SELECT ${eventNames} FROM unnest(${arrays.join(", ")}${build})
     WITH ORDINALITY AS e(${eventNames}${onlyOf === undefined ? "" : ", build_id"}, n)
   ${onlyOf === undefined ? "" : `WHERE e.build_id IN (${onlyOf}) `}ORDER BY n`
}

const insertEvents = prepared(
  "insert_events",
  `WITH inserted AS (${insertEventRows(1)})
   SELECT pg_notify($${eventColumns.length + 1}, $${eventColumns.length + 2})`
)

/** Stores events in the transaction `tx` runs in, announcing them to other processes when it commits. */
export const insertEventsOn =
  (tx: Run, notify: Notify) =>
  (events: ReadonlyArray<Event.Event>): Effect.Effect<void, StorageError.StorageError> =>
    events.length === 0
      ? Effect.void
      : Effect.asVoid(tx(insertEvents, [...eventValues(events), ...notify(eventsWritten)]))

// The largest position a cursor can name: a larger number reads as it, after which there is nothing.
const maxXid = (1n << 64n) - 1n
const maxSeq = (1n << 63n) - 1n
const clamp = (digits: string, max: bigint) => {
  const value = BigInt(digits)
  return (value > max ? max : value).toString()
}

/** The position after which a read starts: `(xid, seq)` as decimal text, `(0, 0)` from the start. */
export const positionOf = (cursor: Event.Cursor | null): readonly [xid: string, seq: string] => {
  if (cursor === null) return ["0", "0"]
  const [xid, seq = "0"] = cursor.split(".")
  return [clamp(xid!, maxXid), clamp(seq, maxSeq)]
}

const readEvents = (scoped: boolean) =>
  prepared(
    scoped ? "read_events_of" : "read_events",
    `SELECT ${eventRowColumns} FROM events
     WHERE (xid, seq) > ($1::xid8, $2::bigint) AND ${settled()}
       AND ($3::text[] IS NULL OR type = ANY($3::text[]))${scoped ? " AND workspace_id = ANY($5::text[])" : ""}
     ORDER BY xid, seq LIMIT $4`
  )
const readAll = readEvents(false)
const readScoped = readEvents(true)

export const makeEventQueries = (run: Run): Pick<StorageDriver.Queries, "readEvents"> => ({
  readEvents: (access, read) => {
    const params = [...positionOf(read.after), read.types, read.limit]
    return Effect.map(
      access._tag === "All"
        ? run<EventRow>(readAll, params)
        : run<EventRow>(readScoped, [...params, [...access.ids]]),
      (rows) => rows.map(toStored)
    )
  }
})
