/** A workspace's row: what both SQL storages store of it, and how it maps to the domain. */
import type * as Id from "../../Id.ts"
import type * as Workspace from "../../Workspace.ts"
import { millis, utc } from "./columnValues.ts"

export interface WorkspaceRow {
  readonly id: string
  readonly name: string
  readonly created_at: number
  readonly updated_at: number
}

export const toWorkspace = (row: WorkspaceRow): Workspace.Workspace => ({
  id: row.id as Id.WorkspaceId,
  name: row.name,
  createdAt: utc(row.created_at),
  updatedAt: utc(row.updated_at)
})

export const fromWorkspace = (workspace: Workspace.Workspace): WorkspaceRow => ({
  id: workspace.id,
  name: workspace.name,
  created_at: millis(workspace.createdAt),
  updated_at: millis(workspace.updatedAt)
})

export const workspaceColumns = ["id", "name", "created_at", "updated_at"] as const satisfies ReadonlyArray<
  keyof WorkspaceRow
>
