/** A source event's row: its changed paths are JSON text. */
import type * as Id from "../../Id.ts"
import type * as SourceEvent from "../../SourceEvent.ts"
import { millis, parse, utc } from "./columnValues.ts"

export interface SourceEventRow {
  readonly id: string
  readonly workspace_id: string
  readonly delivery_id: string
  readonly kind: string
  readonly repository: string
  readonly branch: string | null
  readonly commit_sha: string | null
  readonly changed_paths: string
  readonly author: string | null
  readonly message: string | null
  readonly received_at: number
}

export const toSourceEvent = (row: SourceEventRow): SourceEvent.SourceEvent => ({
  id: row.id as Id.SourceEventId,
  workspaceId: row.workspace_id as Id.WorkspaceId,
  deliveryId: row.delivery_id,
  kind: row.kind as SourceEvent.Kind,
  repository: row.repository,
  branch: row.branch,
  commitSha: row.commit_sha,
  changedPaths: parse(row.changed_paths),
  author: row.author,
  message: row.message,
  receivedAt: utc(row.received_at)
})

export const fromSourceEvent = (event: SourceEvent.SourceEvent): SourceEventRow => ({
  id: event.id,
  workspace_id: event.workspaceId,
  delivery_id: event.deliveryId,
  kind: event.kind,
  repository: event.repository,
  branch: event.branch,
  commit_sha: event.commitSha,
  changed_paths: JSON.stringify(event.changedPaths),
  author: event.author,
  message: event.message,
  received_at: millis(event.receivedAt)
})

export const sourceEventColumns = [
  "id",
  "workspace_id",
  "delivery_id",
  "kind",
  "repository",
  "branch",
  "commit_sha",
  "changed_paths",
  "author",
  "message",
  "received_at"
] as const satisfies ReadonlyArray<keyof SourceEventRow>
