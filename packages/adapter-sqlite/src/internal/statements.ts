/**
 * Every fixed SQL statement the storage runs, prepared once when the storage is built; lists are compiled
 * by core's query compiler (`Sql.compileList`). Values are always bound parameters.
 */
import { SqlRows } from "@kiln/core/adapter"
import type { Connection } from "./connection.ts"

type AppRow = SqlRows.AppRow
type AppVersionRow = SqlRows.AppVersionRow
type BuildRow = SqlRows.BuildRow
type BuildStepRow = SqlRows.BuildStepRow
type LogLineRow = SqlRows.LogLineRow
type LogStatsRow = SqlRows.LogStatsRow
type SourceEventRow = SqlRows.SourceEventRow
type TokenRow = SqlRows.TokenRow
type TriggerRow = SqlRows.TriggerRow
type WorkspaceRow = SqlRows.WorkspaceRow

const {
  appColumns,
  appVersionColumns,
  buildColumns,
  buildStateColumns,
  sourceEventColumns,
  triggerColumns,
  workspaceColumns
} = SqlRows

/** Every column of a token but its hash, which is never read back out. */
export const { tokenColumns } = SqlRows

const insertInto = (table: string, columns: ReadonlyArray<string>): string =>
  `INSERT INTO ${table} (${columns.join(", ")}) VALUES (${columns.map((c) => `@${c}`).join(", ")})`

/** The part of a better-sqlite3 statement the storage uses; named parameters come as one object. */
export interface Statement<Params extends Array<unknown>, Row = unknown> {
  readonly source: string
  readonly run: (...params: Params) => { readonly changes: number }
  readonly get: (...params: Params) => Row | undefined
  readonly all: (...params: Params) => Array<Row>
  readonly iterate: (...params: Params) => IterableIterator<Row>
}

const prepare = <Params extends Array<unknown> = [], Row = unknown>(
  db: Connection,
  source: string
): Statement<Params, Row> => db.prepare<Array<unknown>, Row>(source)

export const prepareStatements = (db: Connection) => ({
  insertWorkspace: prepare<[WorkspaceRow]>(db, insertInto("workspaces", workspaceColumns)),
  workspaceById: prepare<[string], WorkspaceRow>(db, "SELECT * FROM workspaces WHERE id = ?"),
  oldestWorkspace: prepare<[], WorkspaceRow>(db, "SELECT * FROM workspaces ORDER BY created_at, id LIMIT 1"),

  insertApp: prepare<[AppRow]>(db, insertInto("apps", appColumns)),
  appById: prepare<[string], AppRow>(db, "SELECT * FROM apps WHERE id = ?"),
  appHandleTaken: prepare<[string, string], { readonly taken: 1 }>(
    db,
    "SELECT 1 AS taken FROM apps WHERE workspace_id = ? AND handle = ?"
  ),
  // The next gapless sequence number, taken in the transaction that inserts the build.
  nextBuildSequence: prepare<[string], { readonly build_sequence: number }>(
    db,
    "UPDATE apps SET build_sequence = build_sequence + 1 WHERE id = ? RETURNING build_sequence"
  ),

  insertAppVersion: prepare<[AppVersionRow]>(db, insertInto("app_versions", appVersionColumns)),
  appVersionById: prepare<[string], AppVersionRow>(db, "SELECT * FROM app_versions WHERE id = ?"),
  // Compare-and-set on `pending`: a version resolves once.
  resolveAppVersion: prepare<[AppVersionRow]>(
    db,
    `UPDATE app_versions SET status = @status, source = @source, commit_sha = @commit_sha, error = @error,
       updated_at = @updated_at
     WHERE id = @id AND status = 'pending'`
  ),

  insertTrigger: prepare<[TriggerRow]>(db, insertInto("triggers", triggerColumns)),
  triggerById: prepare<[string], TriggerRow>(db, "SELECT * FROM triggers WHERE id = ?"),
  writeTrigger: prepare<[TriggerRow]>(
    db,
    `UPDATE triggers SET ${triggerColumns
      .filter((column) => !["id", "workspace_id", "app_id", "created_at"].includes(column))
      .map((column) => `${column} = @${column}`)
      .join(", ")} WHERE id = @id`
  ),
  activeTriggers: prepare<[string], TriggerRow>(
    db,
    "SELECT * FROM triggers WHERE workspace_id = ? AND deleted_at IS NULL ORDER BY created_at, id"
  ),

  insertSourceEvent: prepare<[SourceEventRow]>(db, insertInto("source_events", sourceEventColumns)),
  sourceEventById: prepare<[string], SourceEventRow>(db, "SELECT * FROM source_events WHERE id = ?"),
  sourceEventByDelivery: prepare<[string, string], SourceEventRow>(
    db,
    "SELECT * FROM source_events WHERE workspace_id = ? AND delivery_id = ?"
  ),

  insertToken: prepare<[TokenRow & { readonly token_hash: string; readonly all_workspaces: number }]>(
    db,
    insertInto("api_tokens", [
      "id",
      "name",
      "workspace_ids",
      "all_workspaces",
      "role",
      "token_hash",
      "created_at",
      "expires_at",
      "revoked_at"
    ])
  ),
  tokenById: prepare<[string], TokenRow>(
    db,
    `SELECT ${tokenColumns.join(", ")} FROM api_tokens WHERE id = ?`
  ),
  tokenByHash: prepare<[string], TokenRow>(
    db,
    `SELECT ${tokenColumns.join(", ")} FROM api_tokens WHERE token_hash = ?`
  ),
  // The first token and how many there are, for a first start to see whether one was issued.
  oldestToken: prepare<[], TokenRow & { readonly tokens: number }>(
    db,
    `SELECT ${tokenColumns.join(", ")}, count(*) OVER () AS tokens FROM api_tokens ORDER BY created_at, id LIMIT 1`
  ),
  revokeToken: prepare<[number, string]>(db, "UPDATE api_tokens SET revoked_at = ? WHERE id = ?"),
  grantTokenWorkspace: prepare<[string, string]>(
    db,
    "INSERT INTO token_workspaces (token_id, workspace_id) VALUES (?, ?)"
  ),

  insertBuild: prepare<[BuildRow]>(db, insertInto("builds", buildColumns)),
  buildById: prepare<[string], BuildRow>(db, "SELECT * FROM builds WHERE id = ?"),
  buildWorkspace: prepare<[string], { readonly workspace_id: string }>(
    db,
    "SELECT workspace_id FROM builds WHERE id = ?"
  ),
  buildByIdempotencyKey: prepare<[string, string], BuildRow>(
    db,
    "SELECT * FROM builds WHERE workspace_id = ? AND idempotency_key = ?"
  ),
  buildBySourceEvent: prepare<[string, string], BuildRow>(
    db,
    "SELECT * FROM builds WHERE entity_id = ? AND source_event_id = ?"
  ),
  // Every state change is a compare-and-set on the phase and attempt the change was computed from.
  writeBuildState: prepare<
    [BuildRow & { readonly expected_phase: string; readonly expected_attempt: number }]
  >(
    db,
    `UPDATE builds SET ${buildStateColumns.map((c) => `${c} = @${c}`).join(", ")}
     WHERE id = @id AND phase = @expected_phase AND attempt = @expected_attempt`
  ),
  // Oldest first on the partial queue index, as far as a claim reads.
  queuedOldest: prepare<[number], BuildRow>(
    db,
    "SELECT * FROM builds WHERE phase = 'queued' ORDER BY created_at, id LIMIT ?"
  ),
  // Only for claims with caps; each count reads just the active builds, on its partial index.
  activeByWorkspace: prepare<[], { readonly key: string; readonly active: number }>(
    db,
    `SELECT workspace_id AS key, count(*) AS active FROM builds
     WHERE phase IN ('initializing', 'running') GROUP BY workspace_id`
  ),
  activeByApp: prepare<[], { readonly key: string; readonly active: number }>(
    db,
    `SELECT entity_id AS key, count(*) AS active FROM builds
     WHERE phase IN ('initializing', 'running') GROUP BY entity_id`
  ),
  expiredLeases: prepare<[number], BuildRow>(
    db,
    "SELECT * FROM builds WHERE phase IN ('initializing', 'running') AND lease_expires_at <= ?"
  ),

  upsertStep: prepare<[BuildStepRow]>(
    db,
    `INSERT OR REPLACE INTO build_steps (build_id, idx, name, status, started_at, completed_at, exit_code, error)
     VALUES (@build_id, @idx, @name, @status, @started_at, @completed_at, @exit_code, @error)`
  ),
  // One statement, so one snapshot without a transaction: the steps come as a JSON array of step rows.
  buildWithSteps: prepare<[string], BuildRow & { readonly steps: string }>(
    db,
    `SELECT b.*, (
       SELECT json_group_array(json_object(
         'build_id', build_id, 'idx', idx, 'name', name, 'status', status, 'started_at', started_at,
         'completed_at', completed_at, 'exit_code', exit_code, 'error', error) ORDER BY idx)
       FROM build_steps WHERE build_id = b.id
     ) AS steps
     FROM builds b WHERE b.id = ?`
  ),

  logStats: prepare<[string], LogStatsRow>(db, "SELECT * FROM log_stats WHERE build_id = ?"),
  upsertLogStats: prepare<[LogStatsRow]>(
    db,
    `INSERT OR REPLACE INTO log_stats (build_id, last_seq, head_bytes, head_last_seq, tail_bytes, dropped_lines,
       dropped_bytes, dropped_through_seq, truncated_at)
     VALUES (@build_id, @last_seq, @head_bytes, @head_last_seq, @tail_bytes, @dropped_lines, @dropped_bytes,
       @dropped_through_seq, @truncated_at)`
  ),
  insertLogLine: prepare<[LogLineRow & { readonly build_id: string }]>(
    db,
    insertInto("log_lines", ["build_id", "seq", "ts", "stream", "step", "text"])
  ),
  // The sizes of the oldest tail lines, for LogBudget.planTrim, in batches as far as it needs. The budget
  // counts UTF-8 bytes, which is what length() measures on a BLOB (on TEXT it counts characters).
  tailLineSizes: prepare<[string, number, number], { readonly seq: number; readonly bytes: number }>(
    db,
    `SELECT seq, length(CAST(text AS BLOB)) AS bytes FROM log_lines
     WHERE build_id = ? AND seq >= ? ORDER BY seq LIMIT ?`
  ),
  deleteLogLines: prepare<[string, number, number]>(
    db,
    "DELETE FROM log_lines WHERE build_id = ? AND seq BETWEEN ? AND ?"
  ),
  logLinesAfter: prepare<[string, number, number], LogLineRow>(
    db,
    "SELECT seq, ts, stream, step, text FROM log_lines WHERE build_id = ? AND seq > ? ORDER BY seq LIMIT ?"
  )
})

export type Statements = ReturnType<typeof prepareStatements>
