/** An app's row: its build settings are JSON text. */
import type * as App from "../../App.ts"
import type * as Id from "../../Id.ts"
import { millis, parse, utc } from "./columnValues.ts"

export interface AppRow {
  readonly id: string
  readonly workspace_id: string
  readonly handle: string
  readonly name: string
  readonly kind: string
  readonly build_settings: string
  readonly created_at: number
  readonly updated_at: number
}

export const toApp = (row: AppRow): App.App => ({
  id: row.id as Id.AppId,
  workspaceId: row.workspace_id as Id.WorkspaceId,
  handle: row.handle,
  name: row.name,
  kind: row.kind,
  build: parse(row.build_settings),
  createdAt: utc(row.created_at),
  updatedAt: utc(row.updated_at)
})

export const fromApp = (app: App.App): AppRow => ({
  id: app.id,
  workspace_id: app.workspaceId,
  handle: app.handle,
  name: app.name,
  kind: app.kind,
  build_settings: JSON.stringify(app.build),
  created_at: millis(app.createdAt),
  updated_at: millis(app.updatedAt)
})

export const appColumns = [
  "id",
  "workspace_id",
  "handle",
  "name",
  "kind",
  "build_settings",
  "created_at",
  "updated_at"
] as const satisfies ReadonlyArray<keyof AppRow>
