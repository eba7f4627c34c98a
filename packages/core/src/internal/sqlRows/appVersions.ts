/** An app version's row: its source is JSON text, and its type a column of its own to filter on. */
import type * as AppVersion from "../../AppVersion.ts"
import type * as Id from "../../Id.ts"
import { millis, parse, utc } from "./columnValues.ts"

export interface AppVersionRow {
  readonly id: string
  readonly workspace_id: string
  readonly app_id: string
  readonly status: string
  readonly source: string
  readonly source_type: string
  readonly commit_sha: string | null
  readonly error: string | null
  readonly created_at: number
  readonly updated_at: number
}

export const toAppVersion = (row: AppVersionRow): AppVersion.AppVersion => ({
  id: row.id as Id.AppVersionId,
  workspaceId: row.workspace_id as Id.WorkspaceId,
  appId: row.app_id as Id.AppId,
  status: row.status as AppVersion.Status,
  source: parse(row.source),
  commitSha: row.commit_sha,
  error: row.error,
  createdAt: utc(row.created_at),
  updatedAt: utc(row.updated_at)
})

export const fromAppVersion = (version: AppVersion.AppVersion): AppVersionRow => ({
  id: version.id,
  workspace_id: version.workspaceId,
  app_id: version.appId,
  status: version.status,
  source: JSON.stringify(version.source),
  source_type: version.source.type,
  commit_sha: version.commitSha,
  error: version.error,
  created_at: millis(version.createdAt),
  updated_at: millis(version.updatedAt)
})

export const appVersionColumns = [
  "id",
  "workspace_id",
  "app_id",
  "status",
  "source",
  "source_type",
  "commit_sha",
  "error",
  "created_at",
  "updated_at"
] as const satisfies ReadonlyArray<keyof AppVersionRow>
