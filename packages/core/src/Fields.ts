/**
 * The closed field table of each listable entity: every field a client may filter or sort on, its type,
 * its SQL column, whether it can be null, and the relations a filter may traverse. Parsing, the SQL
 * compiler and the in-memory evaluator all read these tables, so adding a field is one line here.
 */
import { DateTime } from "effect"
import type { Access } from "./Access.ts"
import { type ApiToken, visibleTo } from "./ApiToken.ts"
import type { App } from "./App.ts"
import type { AppVersion } from "./AppVersion.ts"
import type { Build, BuildStep } from "./Build.ts"
import { activePhases } from "./BuildState.ts"
import type { WorkspaceId } from "./Id.ts"
import type { Trigger } from "./Trigger.ts"
import type { Workspace } from "./Workspace.ts"

export type FieldType = "string" | "number" | "timestamp" | "enum" | "boolean"

/** A field's value as filters and cursors see it: timestamps are epoch milliseconds. */
export type Scalar = string | number | boolean | null

export interface Field<Row = never> {
  readonly type: FieldType
  readonly column: string
  readonly nullable: boolean
  readonly filter: boolean
  readonly sort: boolean
  /** The allowed values of an enum field. */
  readonly values: ReadonlyArray<string>
  readonly get: (row: Row) => Scalar
}

export type Relation =
  /** This row's `column` holds the id of exactly one row of `entity`. */
  | { readonly kind: "one"; readonly entity: Entity; readonly column: string }
  /** Rows of `entity` whose `column` holds this row's id. */
  | { readonly kind: "many"; readonly entity: Entity; readonly column: string }

/**
 * How a caller's workspaces narrow a table: by a workspace column, or (tokens) by the token's grants.
 * SQL reads the column; the in-memory evaluator reads the row.
 */
export type Scope<Row = never> =
  | { readonly kind: "column"; readonly column: string; readonly workspaceOf: (row: Row) => WorkspaceId }
  | { readonly kind: "token"; readonly visible: (access: Access, row: Row) => boolean }
  | { readonly kind: "none" }

/**
 * The fields of `Row`s a client may name, by name. `Table` alone (rows never read, any names) is what code
 * that only reads the table's shape takes: every table is one.
 */
export interface Table<Row = never, Name extends string = string> {
  readonly entity: Entity
  /** The SQL table. */
  readonly table: string
  readonly fields: { readonly [K in Name]: Field<Row> }
  readonly relations: Readonly<Record<string, Relation>>
  readonly scope: Scope<Row>
  /** Query parameters that are shorthand for `field eq value`, ANDed with the filter. */
  readonly shorthands: Readonly<Record<string, NoInfer<Name>>>
  /**
   * Tables a SQL storage keeps in step with this one, each its rows counted per combination of its fields,
   * under the same column names plus `n` (a missing value counted as ''), and the scope's column. A total
   * over equalities on counted fields sums the rows of the first of them that has every such field, rather
   * than counting this table's: the fewer its fields, the fewer rows to sum.
   */
  readonly counts?:
    | ReadonlyArray<{ readonly table: string; readonly fields: ReadonlyArray<NoInfer<Name>> }>
    | undefined
  /**
   * Fields a SQL storage keeps indexes to order on, besides `id` and `createdAt`: `(column, id)` for a
   * non-nullable field; for a nullable one, `(column, id) WHERE column IS NOT NULL` and `(id) WHERE column
   * IS NULL`, and a page ordered first on it is read as those two parts (see `Sql.compileList`).
   */
  readonly sortIndexes?: ReadonlyArray<NoInfer<Name>> | undefined
  /**
   * Rows the sort indexes leave out while `column` holds one of `values`: rows that are few there but
   * change often, each change otherwise a new entry in every index (a build in flight). A page reads them
   * as a part of its own, sorted as read (see `Sql.compileList`), from `index`, one over just those rows:
   * SQLite is told to (`INDEXED BY`), as without statistics it would rather read the primary key in order.
   */
  readonly unsorted?:
    | { readonly column: string; readonly values: ReadonlyArray<string>; readonly index: string }
    | undefined
}

/** The field names of a table. */
export type FieldName<T> = T extends Table<never, infer Name> ? Name : never

/** The row of each listable entity. */
export interface Rows {
  readonly builds: Build
  readonly apps: App
  readonly appVersions: AppVersion
  readonly workspaces: Workspace
  readonly tokens: ApiToken
  readonly steps: BuildStep
  readonly triggers: Trigger
}

export type Entity = keyof Rows

// ---------------------------------------------------------------------------------------------------------
// Field constructors: a field filters and sorts unless told otherwise.
// ---------------------------------------------------------------------------------------------------------

interface FieldOptions {
  readonly nullable?: boolean
  readonly filter?: boolean
  readonly sort?: boolean
}

const field =
  (type: FieldType, values: ReadonlyArray<string> = []) =>
  <Row>(column: string, get: (row: Row) => Scalar, options: FieldOptions = {}): Field<Row> => ({
    type,
    column,
    values,
    get,
    nullable: options.nullable ?? false,
    filter: options.filter ?? true,
    sort: options.sort ?? true
  })

const string = field("string")
const number = field("number")
const enumOf = (values: ReadonlyArray<string>) => field("enum", values)
const timestamp = <Row>(
  column: string,
  get: (row: Row) => DateTime.Utc | null,
  options: FieldOptions = {}
): Field<Row> =>
  field("timestamp")<Row>(
    column,
    (row) => {
      const at = get(row)
      return at === null ? null : DateTime.toEpochMillis(at)
    },
    options
  )

const nullable = { nullable: true } as const

/** A table of `Row`s, its field names taken from `fields`. */
const tableOf =
  <Row>() =>
  <Name extends string>(table: Table<Row, Name>): Table<Row, Name> =>
    table

// ---------------------------------------------------------------------------------------------------------
// The tables
// ---------------------------------------------------------------------------------------------------------

const buildsTable = tableOf<Build>()({
  entity: "builds",
  table: "builds",
  scope: { kind: "column", column: "workspace_id", workspaceOf: (b) => b.workspaceId },
  fields: {
    id: string("id", (b) => b.id),
    workspaceId: string("workspace_id", (b) => b.workspaceId),
    entityId: string("entity_id", (b) => b.entityId),
    appVersionId: string("app_version_id", (b) => b.appVersionId),
    sequenceNumber: number("sequence_number", (b) => b.sequenceNumber),
    status: enumOf(["pending", "running", "completed", "failed", "cancelled", "skipped"])(
      "status",
      (b) => b.status
    ),
    phase: enumOf(["queued", "initializing", "running", "stopped"])("phase", (b) => b.phase),
    outcome: enumOf(["success", "failure", "cancelled", "timed_out", "lost", "skipped"])(
      "outcome",
      (b) => b.outcome,
      nullable
    ),
    trigger: enumOf(["manual", "auto", "redeploy"])("build_trigger", (b) => b.trigger),
    sourceEventId: string("source_event_id", (b) => b.sourceEventId, nullable),
    error: string("error", (b) => b.error, nullable),
    createdBy: string("created_by", (b) => b.createdBy, nullable),
    commitSha: string("commit_sha", (b) => b.commitSha, nullable),
    imageTag: string("image_tag", (b) => b.imageTag, nullable),
    cancelReason: string("cancel_reason", (b) => b.cancelReason, nullable),
    owner: string("owner", (b) => b.owner, nullable),
    attempt: number("attempt", (b) => b.attempt),
    createdAt: timestamp("created_at", (b) => b.createdAt),
    updatedAt: timestamp("updated_at", (b) => b.updatedAt),
    startedAt: timestamp("started_at", (b) => b.startedAt, nullable),
    runningAt: timestamp("running_at", (b) => b.runningAt, nullable),
    completedAt: timestamp("completed_at", (b) => b.completedAt, nullable),
    cancelRequestedAt: timestamp("cancel_requested_at", (b) => b.cancelRequestedAt, nullable)
  },
  relations: {
    app: { kind: "one", entity: "apps", column: "entity_id" },
    appVersion: { kind: "one", entity: "appVersions", column: "app_version_id" },
    steps: { kind: "many", entity: "steps", column: "build_id" }
  },
  shorthands: {
    workspace_id: "workspaceId",
    entity_id: "entityId",
    app_id: "entityId",
    status: "status",
    trigger: "trigger",
    created_by: "createdBy"
  },
  // A workspace of a hundred creators has a hundred times the rows in build_counts: a total that names no
  // creator sums build_totals.
  counts: [
    { table: "build_totals", fields: ["workspaceId", "entityId", "status", "trigger"] },
    { table: "build_counts", fields: ["workspaceId", "entityId", "status", "trigger", "createdBy"] }
  ]
})

/**
 * Builds keep sort indexes for every field a list sorts on but `id` and `createdAt`, which the primary key and
 * `builds_list` serve: a field made sortable needs a migration that adds its indexes (the plan tests say so).
 * They leave out builds in flight, which an engine changes twice (claimed, running) and holds no more of
 * than its slots and claims ahead: each change would otherwise write an entry to each of some forty indexes.
 */
export const builds: typeof buildsTable = {
  ...buildsTable,
  sortIndexes: (Object.keys(buildsTable.fields) as Array<keyof typeof buildsTable.fields>).filter(
    (name) => buildsTable.fields[name].sort && name !== "id" && name !== "createdAt"
  ),
  unsorted: { column: "phase", values: activePhases, index: "builds_active_by_workspace" }
}

export const steps = tableOf<BuildStep>()({
  entity: "steps",
  table: "build_steps",
  scope: { kind: "none" },
  fields: {
    index: number("idx", (s) => s.index),
    name: string("name", (s) => s.name),
    status: enumOf(["running", "succeeded", "failed", "cancelled"])("status", (s) => s.status),
    exitCode: number("exit_code", (s) => s.exitCode, nullable),
    error: string("error", (s) => s.error, nullable),
    startedAt: timestamp("started_at", (s) => s.startedAt),
    completedAt: timestamp("completed_at", (s) => s.completedAt, nullable)
  },
  relations: {},
  shorthands: {}
})

export const apps = tableOf<App>()({
  entity: "apps",
  table: "apps",
  scope: { kind: "column", column: "workspace_id", workspaceOf: (a) => a.workspaceId },
  fields: {
    id: string("id", (a) => a.id),
    workspaceId: string("workspace_id", (a) => a.workspaceId),
    handle: string("handle", (a) => a.handle),
    name: string("name", (a) => a.name),
    kind: string("kind", (a) => a.kind),
    createdAt: timestamp("created_at", (a) => a.createdAt),
    updatedAt: timestamp("updated_at", (a) => a.updatedAt)
  },
  relations: {},
  shorthands: { workspace_id: "workspaceId" }
})

export const appVersions = tableOf<AppVersion>()({
  entity: "appVersions",
  table: "app_versions",
  scope: { kind: "column", column: "workspace_id", workspaceOf: (v) => v.workspaceId },
  fields: {
    id: string("id", (v) => v.id),
    workspaceId: string("workspace_id", (v) => v.workspaceId),
    appId: string("app_id", (v) => v.appId),
    status: enumOf(["pending", "ready", "failed"])("status", (v) => v.status),
    sourceType: enumOf(["git", "archive"])("source_type", (v) => v.source.type),
    commitSha: string("commit_sha", (v) => v.commitSha, nullable),
    error: string("error", (v) => v.error, nullable),
    createdAt: timestamp("created_at", (v) => v.createdAt),
    updatedAt: timestamp("updated_at", (v) => v.updatedAt)
  },
  relations: { app: { kind: "one", entity: "apps", column: "app_id" } },
  shorthands: { workspace_id: "workspaceId", app_id: "appId" }
})

export const workspaces = tableOf<Workspace>()({
  entity: "workspaces",
  table: "workspaces",
  scope: { kind: "column", column: "id", workspaceOf: (w) => w.id },
  fields: {
    id: string("id", (w) => w.id),
    name: string("name", (w) => w.name),
    createdAt: timestamp("created_at", (w) => w.createdAt),
    updatedAt: timestamp("updated_at", (w) => w.updatedAt)
  },
  relations: {},
  shorthands: {}
})

export const tokens = tableOf<ApiToken>()({
  entity: "tokens",
  table: "api_tokens",
  scope: { kind: "token", visible: visibleTo },
  fields: {
    id: string("id", (t) => t.id),
    name: string("name", (t) => t.name),
    role: enumOf(["read", "write", "admin"])("role", (t) => t.role),
    createdAt: timestamp("created_at", (t) => t.createdAt),
    expiresAt: timestamp("expires_at", (t) => t.expiresAt, nullable),
    revokedAt: timestamp("revoked_at", (t) => t.revokedAt, nullable)
  },
  relations: {},
  shorthands: {}
})

export const triggers = tableOf<Trigger>()({
  entity: "triggers",
  table: "triggers",
  scope: { kind: "column", column: "workspace_id", workspaceOf: (t) => t.workspaceId },
  fields: {
    id: string("id", (t) => t.id),
    workspaceId: string("workspace_id", (t) => t.workspaceId),
    appId: string("app_id", (t) => t.appId),
    name: string("name", (t) => t.name),
    repository: string("repository", (t) => t.repository, nullable),
    cachingEnabled: field("boolean")("caching_enabled", (t) => t.cachingEnabled, { sort: false }),
    createdAt: timestamp("created_at", (t) => t.createdAt),
    updatedAt: timestamp("updated_at", (t) => t.updatedAt),
    deletedAt: timestamp("deleted_at", (t) => t.deletedAt, nullable)
  },
  relations: { app: { kind: "one", entity: "apps", column: "app_id" } },
  shorthands: { workspace_id: "workspaceId", app_id: "appId" }
})

export type BuildField = FieldName<typeof builds>
export type AppField = FieldName<typeof apps>
export type AppVersionField = FieldName<typeof appVersions>
export type WorkspaceField = FieldName<typeof workspaces>
export type TokenField = FieldName<typeof tokens>
export type TriggerField = FieldName<typeof triggers>

/** Each entity's table, as relations reach it. */
export type Tables = { readonly [E in Entity]: Table<Rows[E]> }

export const tables: Tables = { builds, steps, apps, appVersions, workspaces, tokens, triggers }

/** Whether a table has a field of this name: never a property inherited from `Object.prototype`. */
export const hasField = <Name extends string>(table: Table<never, Name>, name: string): name is Name =>
  Object.hasOwn(table.fields, name)

export const relationOf = (table: Table, name: string): Relation | undefined =>
  Object.hasOwn(table.relations, name) ? table.relations[name] : undefined
