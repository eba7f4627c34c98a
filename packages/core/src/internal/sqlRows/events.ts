/**
 * An event's row: its data is JSON text. Its place in the feed is a column each storage assigns and names
 * itself (a position on SQLite, a transaction id and a counter on PostgreSQL), so it is not part of the row.
 */
import type * as Event from "../../Event.ts"
import type * as Id from "../../Id.ts"
import { millis, parse, utc } from "./columnValues.ts"

export interface EventRow {
  readonly id: string
  readonly workspace_id: string
  readonly type: string
  readonly subject: string
  readonly timestamp: number
  readonly data: string
}

export const toEvent = (row: EventRow): Event.Event => ({
  id: row.id as Id.EventId,
  type: row.type as Event.Type,
  timestamp: utc(row.timestamp),
  workspaceId: row.workspace_id as Id.WorkspaceId,
  subject: row.subject,
  data: parse(row.data)
})

export const fromEvent = (event: Event.Event): EventRow => ({
  id: event.id,
  workspace_id: event.workspaceId,
  type: event.type,
  subject: event.subject,
  timestamp: millis(event.timestamp),
  data: JSON.stringify(event.data)
})

export const eventColumns = [
  "id",
  "workspace_id",
  "type",
  "subject",
  "timestamp",
  "data"
] as const satisfies ReadonlyArray<keyof EventRow>
