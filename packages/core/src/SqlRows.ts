/**
 * Rows as Kiln's SQL storages store them, and their mapping to and from the domain. SQLite and Postgres
 * store the same columns, named as in `Fields` (the domain's field names in snake_case) so that
 * `Sql.compileList` fits both: timestamps are epoch milliseconds, JSON values are text exactly as written.
 * Rows are trusted: only a storage writes them, from values the domain already checked.
 */
import { DateTime } from "effect"
import type * as ApiToken from "./ApiToken.ts"
import type * as App from "./App.ts"
import type * as AppVersion from "./AppVersion.ts"
import type * as Build from "./Build.ts"
import type * as BuildState from "./BuildState.ts"
import type * as Id from "./Id.ts"
import type * as LogBudget from "./LogBudget.ts"
import type * as LogLine from "./LogLine.ts"
import type * as SourceEvent from "./SourceEvent.ts"
import type * as Trigger from "./Trigger.ts"
import type * as Workspace from "./Workspace.ts"

const utc = (millis: number): DateTime.Utc => DateTime.makeUnsafe(millis)
const utcOrNull = (millis: number | null): DateTime.Utc | null => (millis === null ? null : utc(millis))
const millis = (at: DateTime.Utc): number => DateTime.toEpochMillis(at)
const millisOrNull = (at: DateTime.Utc | null): number | null => (at === null ? null : millis(at))
const parse = <A>(json: string): A => JSON.parse(json) as A

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

/** A token as it is read back: everything but its hash. */
export interface TokenRow {
  readonly id: string
  readonly name: string
  readonly workspace_ids: string
  readonly role: string
  readonly created_at: number
  readonly expires_at: number | null
  readonly revoked_at: number | null
}

/** Every column of a token but its hash, which is never read back out. */
export const tokenColumns = [
  "id",
  "name",
  "workspace_ids",
  "role",
  "created_at",
  "expires_at",
  "revoked_at"
] as const satisfies ReadonlyArray<keyof TokenRow>

export const toToken = (row: TokenRow): ApiToken.ApiToken => ({
  id: row.id as Id.TokenId,
  name: row.name,
  workspaceIds: parse(row.workspace_ids),
  role: row.role as ApiToken.Role,
  createdAt: utc(row.created_at),
  expiresAt: utcOrNull(row.expires_at),
  revokedAt: utcOrNull(row.revoked_at)
})

export const fromToken = (
  token: ApiToken.ApiToken,
  tokenHash: string
): TokenRow & { readonly token_hash: string; readonly all_workspaces: number } => ({
  id: token.id,
  name: token.name,
  workspace_ids: JSON.stringify(token.workspaceIds),
  // SQLite's INTEGER 1 or 0, which Postgres' BOOLEAN reads as true or false.
  all_workspaces: token.workspaceIds === "*" ? 1 : 0,
  role: token.role,
  token_hash: tokenHash,
  created_at: millis(token.createdAt),
  expires_at: millisOrNull(token.expiresAt),
  revoked_at: millisOrNull(token.revokedAt)
})

export interface BuildRow {
  readonly id: string
  readonly workspace_id: string
  readonly entity_id: string
  readonly app_version_id: string
  readonly sequence_number: number
  readonly phase: string
  readonly outcome: string | null
  readonly status: string
  readonly build_trigger: string
  readonly source_event_id: string | null
  readonly idempotency_key: string | null
  readonly error: string | null
  readonly metadata: string
  readonly created_by: string | null
  readonly created_at: number
  readonly updated_at: number
  readonly started_at: number | null
  readonly running_at: number | null
  readonly completed_at: number | null
  readonly cancel_requested_at: number | null
  readonly cancel_reason: string | null
  readonly skip_reason: string | null
  readonly image_tag: string | null
  readonly image_digest: string | null
  readonly commit_sha: string | null
  readonly trigger_metadata: string | null
  readonly owner: string | null
  readonly attempt: number
  readonly lease_expires_at: number | null
}

/** Every column of a build, in table order. */
export const buildColumns = [
  "id",
  "workspace_id",
  "entity_id",
  "app_version_id",
  "sequence_number",
  "phase",
  "outcome",
  "status",
  "build_trigger",
  "source_event_id",
  "idempotency_key",
  "error",
  "metadata",
  "created_by",
  "created_at",
  "updated_at",
  "started_at",
  "running_at",
  "completed_at",
  "cancel_requested_at",
  "cancel_reason",
  "skip_reason",
  "image_tag",
  "image_digest",
  "commit_sha",
  "trigger_metadata",
  "owner",
  "attempt",
  "lease_expires_at"
] as const satisfies ReadonlyArray<keyof BuildRow>

// What a state change can touch: everything but the identity and what creation fixed.
export const buildStateColumns = [
  "phase",
  "outcome",
  "status",
  "error",
  "updated_at",
  "started_at",
  "running_at",
  "completed_at",
  "cancel_requested_at",
  "cancel_reason",
  "skip_reason",
  "image_tag",
  "image_digest",
  "owner",
  "attempt",
  "lease_expires_at"
] as const satisfies ReadonlyArray<keyof BuildRow>

export const toBuild = (row: BuildRow): Build.Build => ({
  id: row.id as Id.BuildId,
  workspaceId: row.workspace_id as Id.WorkspaceId,
  entityId: row.entity_id as Id.AppId,
  appVersionId: row.app_version_id as Id.AppVersionId,
  sequenceNumber: row.sequence_number,
  phase: row.phase as BuildState.Phase,
  outcome: row.outcome as BuildState.Outcome | null,
  status: row.status as BuildState.Status,
  trigger: row.build_trigger as Build.BuildTrigger,
  sourceEventId: row.source_event_id as Id.SourceEventId | null,
  idempotencyKey: row.idempotency_key,
  error: row.error,
  metadata: parse(row.metadata),
  createdBy: row.created_by,
  createdAt: utc(row.created_at),
  updatedAt: utc(row.updated_at),
  startedAt: utcOrNull(row.started_at),
  runningAt: utcOrNull(row.running_at),
  completedAt: utcOrNull(row.completed_at),
  cancelRequestedAt: utcOrNull(row.cancel_requested_at),
  cancelReason: row.cancel_reason,
  skipReason: row.skip_reason,
  imageTag: row.image_tag,
  imageDigest: row.image_digest,
  commitSha: row.commit_sha,
  triggerMetadata: row.trigger_metadata === null ? null : parse(row.trigger_metadata),
  owner: row.owner,
  attempt: row.attempt,
  leaseExpiresAt: utcOrNull(row.lease_expires_at)
})

export const fromBuild = (build: Build.Build): BuildRow => ({
  id: build.id,
  workspace_id: build.workspaceId,
  entity_id: build.entityId,
  app_version_id: build.appVersionId,
  sequence_number: build.sequenceNumber,
  phase: build.phase,
  outcome: build.outcome,
  status: build.status,
  build_trigger: build.trigger,
  source_event_id: build.sourceEventId,
  idempotency_key: build.idempotencyKey,
  error: build.error,
  metadata: JSON.stringify(build.metadata),
  created_by: build.createdBy,
  created_at: millis(build.createdAt),
  updated_at: millis(build.updatedAt),
  started_at: millisOrNull(build.startedAt),
  running_at: millisOrNull(build.runningAt),
  completed_at: millisOrNull(build.completedAt),
  cancel_requested_at: millisOrNull(build.cancelRequestedAt),
  cancel_reason: build.cancelReason,
  skip_reason: build.skipReason,
  image_tag: build.imageTag,
  image_digest: build.imageDigest,
  commit_sha: build.commitSha,
  trigger_metadata: build.triggerMetadata === null ? null : JSON.stringify(build.triggerMetadata),
  owner: build.owner,
  attempt: build.attempt,
  lease_expires_at: millisOrNull(build.leaseExpiresAt)
})

export interface BuildStepRow {
  readonly build_id: string
  readonly idx: number
  readonly name: string
  readonly status: string
  readonly started_at: number
  readonly completed_at: number | null
  readonly exit_code: number | null
  readonly error: string | null
}

export const toBuildStep = (row: BuildStepRow): Build.BuildStep => ({
  index: row.idx,
  name: row.name,
  status: row.status as Build.StepStatus,
  startedAt: utc(row.started_at),
  completedAt: utcOrNull(row.completed_at),
  exitCode: row.exit_code,
  error: row.error
})

export const fromBuildStep = (buildId: Id.BuildId, step: Build.BuildStep): BuildStepRow => ({
  build_id: buildId,
  idx: step.index,
  name: step.name,
  status: step.status,
  started_at: millis(step.startedAt),
  completed_at: millisOrNull(step.completedAt),
  exit_code: step.exitCode,
  error: step.error
})

export interface LogLineRow {
  readonly seq: number
  readonly ts: number
  readonly stream: string
  readonly step: string | null
  readonly text: string
}

export const toLogLine = (row: LogLineRow): LogLine.LogLine => ({
  seq: row.seq,
  ts: utc(row.ts),
  stream: row.stream as LogLine.LogStream,
  step: row.step,
  text: row.text
})

export const fromLogLine = (
  buildId: Id.BuildId,
  line: LogLine.LogLine
): LogLineRow & { build_id: string } => ({
  build_id: buildId,
  seq: line.seq,
  ts: millis(line.ts),
  stream: line.stream,
  step: line.step,
  text: line.text
})

export interface LogStatsRow {
  readonly build_id: string
  readonly last_seq: number
  readonly head_bytes: number
  readonly head_last_seq: number | null
  readonly tail_bytes: number
  readonly dropped_lines: number
  readonly dropped_bytes: number
  readonly dropped_through_seq: number
  readonly truncated_at: number | null
}

export const toLogStats = (row: LogStatsRow): LogBudget.Stats => ({
  lastSeq: row.last_seq,
  headBytes: row.head_bytes,
  headLastSeq: row.head_last_seq,
  tailBytes: row.tail_bytes,
  droppedLines: row.dropped_lines,
  droppedBytes: row.dropped_bytes,
  droppedThroughSeq: row.dropped_through_seq,
  truncatedAt: utcOrNull(row.truncated_at)
})

export const fromLogStats = (buildId: Id.BuildId, stats: LogBudget.Stats): LogStatsRow => ({
  build_id: buildId,
  last_seq: stats.lastSeq,
  head_bytes: stats.headBytes,
  head_last_seq: stats.headLastSeq,
  tail_bytes: stats.tailBytes,
  dropped_lines: stats.droppedLines,
  dropped_bytes: stats.droppedBytes,
  dropped_through_seq: stats.droppedThroughSeq,
  truncated_at: millisOrNull(stats.truncatedAt)
})

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

/** Each table's columns in one order, for the statements both SQL storages build from column lists. */
export const workspaceColumns = ["id", "name", "created_at", "updated_at"] as const satisfies ReadonlyArray<
  keyof WorkspaceRow
>
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
export const stepColumns = [
  "build_id",
  "idx",
  "name",
  "status",
  "started_at",
  "completed_at",
  "exit_code",
  "error"
] as const satisfies ReadonlyArray<keyof BuildStepRow>
export const logStatsColumns = [
  "build_id",
  "last_seq",
  "head_bytes",
  "head_last_seq",
  "tail_bytes",
  "dropped_lines",
  "dropped_bytes",
  "dropped_through_seq",
  "truncated_at"
] as const satisfies ReadonlyArray<keyof LogStatsRow>
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
