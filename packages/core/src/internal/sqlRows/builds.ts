/** A build's row, and the columns a state change writes. */
import type * as Build from "../../Build.ts"
import type * as BuildState from "../../BuildState.ts"
import * as Fields from "../../Fields.ts"
import type * as Id from "../../Id.ts"
import * as Sql from "../../Sql.ts"
import { millis, millisOrNull, parse, utc, utcOrNull } from "./columnValues.ts"

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

/**
 * The builds table's second set of sort indexes (SQLite's migration 8, PostgreSQL's 9): one for every field a
 * list sorts on that had none, so that a page in any order reads its rows in order; `app_version_id`'s plain
 * lookup index gives way to its sort index, which serves the same lookups. Released migrations run it, so it
 * never changes: more indexes are another migration.
 */
const moreSortFields = [
  "workspaceId",
  "entityId",
  "appVersionId",
  "status",
  "phase",
  "outcome",
  "trigger",
  "sourceEventId",
  "error",
  "createdBy",
  "commitSha",
  "imageTag",
  "cancelReason",
  "owner",
  "attempt",
  "runningAt",
  "cancelRequestedAt"
] as const satisfies ReadonlyArray<Fields.BuildField>

export const moreBuildSortIndexes = `DROP INDEX builds_by_version;
${Sql.sortIndexDdl(Fields.builds, moreSortFields)}`

/**
 * The builds table's sort and list indexes again, over the builds that are not in flight (SQLite's
 * migration 10, PostgreSQL's 11; `Fields.builds.unsorted`): a claim and a build's start then write an
 * entry to a few indexes rather than to forty. The sort indexes of the app and the version keep every
 * build: lookups by app or version (retention, whether a version still has builds) read them without a
 * phase. `started_at`'s and `completed_at`'s null indexes take the names the others have. Released
 * migrations run it, so it never changes: other indexes are another migration.
 */
export const settledBuildSortIndexes = (() => {
  const settled = `"phase" NOT IN ('initializing', 'running')`
  // The four fields of migration 7, and the second set's but the app's and the version's.
  const fields = [
    ...(["sequenceNumber", "updatedAt", "startedAt", "completedAt"] as const),
    ...moreSortFields.filter((name) => name !== "entityId" && name !== "appVersionId")
  ]
  const drops = fields.flatMap((name) => {
    const field: Fields.Field = Fields.builds.fields[name]
    const nulls =
      name === "startedAt"
        ? "builds_not_started"
        : name === "completedAt"
          ? "builds_not_completed"
          : `builds_${field.column}_nulls`
    return [`builds_by_${field.column}`, ...(field.nullable ? [nulls] : [])]
  })
  const lists = [
    ["builds_list", `"created_at", "id"`, ""],
    ["builds_list_by_workspace", `"workspace_id", "created_at", "id"`, ""],
    ["builds_list_by_status", `"status", "created_at", "id"`, ""],
    ["builds_list_by_trigger", `"build_trigger", "created_at", "id"`, ""],
    ["builds_list_by_creator", `"created_by", "created_at", "id"`, `"created_by" IS NOT NULL AND `]
  ] as const
  return [
    ...[...drops, ...lists.map(([name]) => name)].map((name) => `DROP INDEX ${name};`),
    Sql.sortIndexDdl(Fields.builds, fields, settled),
    ...lists.map(
      ([name, columns, where]) => `CREATE INDEX ${name} ON "builds" (${columns}) WHERE ${where}${settled};`
    )
  ].join("\n")
})()
