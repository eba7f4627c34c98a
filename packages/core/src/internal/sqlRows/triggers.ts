/** A trigger's row: its rules and environment are JSON text. */
import type * as Id from "../../Id.ts"
import type * as Trigger from "../../Trigger.ts"
import { millis, millisOrNull, parse, utc, utcOrNull } from "./columnValues.ts"

export interface TriggerRow {
  readonly id: string
  readonly workspace_id: string
  readonly app_id: string
  readonly name: string
  readonly repository: string | null
  readonly branch_includes: string
  readonly branch_excludes: string
  readonly path_includes: string
  readonly path_excludes: string
  readonly build_command: string | null
  readonly deploy_command: string | null
  readonly root_directory: string | null
  /** 0 or 1 as written; SQLite reads back a number, PostgreSQL (a BOOLEAN column) a boolean. */
  readonly caching_enabled: number | boolean
  readonly environment: string
  readonly created_at: number
  readonly updated_at: number
  readonly deleted_at: number | null
}

export const toTrigger = (row: TriggerRow): Trigger.Trigger => ({
  id: row.id as Id.TriggerId,
  workspaceId: row.workspace_id as Id.WorkspaceId,
  appId: row.app_id as Id.AppId,
  name: row.name,
  repository: row.repository,
  branchIncludes: parse(row.branch_includes),
  branchExcludes: parse(row.branch_excludes),
  pathIncludes: parse(row.path_includes),
  pathExcludes: parse(row.path_excludes),
  buildCommand: row.build_command,
  deployCommand: row.deploy_command,
  rootDirectory: row.root_directory,
  cachingEnabled: Boolean(row.caching_enabled),
  environment: parse(row.environment),
  createdAt: utc(row.created_at),
  updatedAt: utc(row.updated_at),
  deletedAt: utcOrNull(row.deleted_at)
})

export const fromTrigger = (trigger: Trigger.Trigger): TriggerRow => ({
  id: trigger.id,
  workspace_id: trigger.workspaceId,
  app_id: trigger.appId,
  name: trigger.name,
  repository: trigger.repository,
  branch_includes: JSON.stringify(trigger.branchIncludes),
  branch_excludes: JSON.stringify(trigger.branchExcludes),
  path_includes: JSON.stringify(trigger.pathIncludes),
  path_excludes: JSON.stringify(trigger.pathExcludes),
  build_command: trigger.buildCommand,
  deploy_command: trigger.deployCommand,
  root_directory: trigger.rootDirectory,
  caching_enabled: trigger.cachingEnabled ? 1 : 0,
  environment: JSON.stringify(trigger.environment),
  created_at: millis(trigger.createdAt),
  updated_at: millis(trigger.updatedAt),
  deleted_at: millisOrNull(trigger.deletedAt)
})

export const triggerColumns = [
  "id",
  "workspace_id",
  "app_id",
  "name",
  "repository",
  "branch_includes",
  "branch_excludes",
  "path_includes",
  "path_excludes",
  "build_command",
  "deploy_command",
  "root_directory",
  "caching_enabled",
  "environment",
  "created_at",
  "updated_at",
  "deleted_at"
] as const satisfies ReadonlyArray<keyof TriggerRow>
