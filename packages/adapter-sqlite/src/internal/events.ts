/**
 * The feed on SQLite: events in the order their transactions committed, which is the order of their
 * positions (one writer at a time takes the next position), and a cursor that is the position itself.
 */
import { type Access, Event } from "@kiln/core"
import { SqlRows as rows, type StorageDriver } from "@kiln/core/adapter"
import { Result } from "effect"
import { attempt, type Connection, snapshot } from "./connection.ts"
import type { PositionedEventRow, Statements } from "./statements.ts"

/** SQLite's largest integer: past every position. */
export const maxPosition = 2n ** 63n - 1n

/**
 * The position a cursor resumes after. A cursor of PostgreSQL's form (`<xid>.<seq>`) is read by its
 * leading number; one past SQLite's largest integer is past every event.
 */
export const cursorPosition = (cursor: Event.Cursor | null): bigint => {
  if (cursor === null) return 0n
  const leading = BigInt(cursor.split(".")[0]!)
  return leading > maxPosition ? maxPosition : leading
}

const toStored = (row: PositionedEventRow): Event.Stored => ({
  ...rows.toEvent(row),
  cursor: Event.cursorOf(row.position)
})

/** Stores events in the open transaction, after every event already in the feed. */
export const insertEvents = (sql: Statements, events: ReadonlyArray<Event.Event>) => {
  for (const event of events) sql.insertEvent.run(rows.fromEvent(event))
}

export const makeEventQueries = (
  db: Connection,
  sql: Statements
): Pick<StorageDriver.Queries, "readEvents"> => ({
  readEvents: (access: Access.Access, read: Event.Read) => {
    const page = {
      after: cursorPosition(read.after),
      types: read.types === null ? null : JSON.stringify(read.types),
      limit: Math.max(0, read.limit)
    }
    if (access._tag === "All") return attempt(() => sql.eventsAfter.all(page).map(toStored))
    // One page per workspace on its index, merged by position: a scan of the whole feed would read every
    // other workspace's events too. One snapshot, so no workspace's page misses an event another's shows.
    return snapshot(db, () => {
      const merged = [...access.ids].flatMap((workspace) =>
        sql.workspaceEventsAfter.all({ ...page, workspace })
      )
      merged.sort((a, b) => a.position - b.position)
      return Result.succeed(merged.slice(0, page.limit).map(toStored))
    })
  }
})
