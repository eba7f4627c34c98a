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
type DeliveryRow = SqlRows.DeliveryRow
type EventRow = SqlRows.EventRow
type LogLineRow = SqlRows.LogLineRow
type LogStatsRow = SqlRows.LogStatsRow
type SourceEventRow = SqlRows.SourceEventRow
type TokenRow = SqlRows.TokenRow
type TriggerRow = SqlRows.TriggerRow
type WebhookRow = SqlRows.WebhookRow
type WorkspaceRow = SqlRows.WorkspaceRow

const {
  appColumns,
  appVersionColumns,
  buildColumns,
  buildStateColumns,
  deliveryColumns,
  eventColumns,
  sourceEventColumns,
  triggerColumns,
  webhookColumns,
  workspaceColumns
} = SqlRows

/** An event with its place in the feed. */
export type PositionedEventRow = EventRow & { readonly position: number }

/** A delivery that can be claimed, with what sending it needs of its endpoint. */
export type ClaimableRow = DeliveryRow &
  Pick<WebhookRow, "url" | "secret" | "previous_secret" | "previous_secret_expires_at"> & {
    readonly position: number
  }

/** The events read after a position: `types` is a JSON array of event types, or null for every type. */
type EventsAfter = { readonly after: bigint; readonly types: string | null; readonly limit: number }

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
  ping: prepare<[], { readonly one: 1 }>(db, "SELECT 1 AS one"),
  insertWorkspace: prepare<[WorkspaceRow]>(db, insertInto("workspaces", workspaceColumns)),
  workspaceById: prepare<[string], WorkspaceRow>(db, "SELECT * FROM workspaces WHERE id = ?"),
  oldestWorkspace: prepare<[], WorkspaceRow>(db, "SELECT * FROM workspaces ORDER BY created_at, id LIMIT 1"),

  insertApp: prepare<[AppRow]>(db, insertInto("apps", appColumns)),
  appById: prepare<[string], AppRow>(db, "SELECT * FROM apps WHERE id = ?"),
  appHandleTaken: prepare<[string, string], { readonly taken: 1 }>(
    db,
    "SELECT 1 AS taken FROM apps WHERE workspace_id = ? AND handle = ?"
  ),
  // Takes gapless sequence numbers in the transaction that inserts the builds; answers the last one taken.
  nextBuildSequence: prepare<[number, string], { readonly build_sequence: number }>(
    db,
    "UPDATE apps SET build_sequence = build_sequence + ? WHERE id = ? RETURNING build_sequence"
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
  // Oldest first on the partial queue index, as far as a claim reads. These statements name their partial
  // indexes: without statistics the planner would rather take the phase's sort index, and sort what it read.
  queuedOldest: prepare<[number], BuildRow>(
    db,
    "SELECT * FROM builds INDEXED BY builds_queued WHERE phase = 'queued' ORDER BY created_at, id LIMIT ?"
  ),
  // Only for claims with caps; each count reads just the active builds, on its partial index.
  activeByWorkspace: prepare<[], { readonly key: string; readonly active: number }>(
    db,
    `SELECT workspace_id AS key, count(*) AS active FROM builds INDEXED BY builds_active_by_workspace
     WHERE phase IN ('initializing', 'running') GROUP BY workspace_id`
  ),
  activeByApp: prepare<[], { readonly key: string; readonly active: number }>(
    db,
    `SELECT entity_id AS key, count(*) AS active FROM builds INDEXED BY builds_active_by_app
     WHERE phase IN ('initializing', 'running') GROUP BY entity_id`
  ),
  expiredLeases: prepare<[number], BuildRow>(
    db,
    `SELECT * FROM builds INDEXED BY builds_active_by_lease
     WHERE phase IN ('initializing', 'running') AND lease_expires_at <= ?`
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
  ),

  // Retention (DESIGN.md §12). A stopped build's log expires: its candidates on the app's index by creation,
  // which every build stopped before the cut-off was also created before.
  logsToExpire: prepare<
    [{ readonly app: string; readonly before: number; readonly limit: number }],
    BuildRow
  >(
    db,
    `SELECT b.* FROM builds b LEFT JOIN log_stats s ON s.build_id = b.id
     WHERE b.entity_id = @app AND b.created_at < @before AND b.phase = 'stopped' AND b.completed_at < @before
       AND s.expired_at IS NULL
     ORDER BY b.created_at, b.id LIMIT @limit`
  ),
  expireLog: prepare<[string, number]>(
    db,
    `INSERT INTO log_stats (build_id, last_seq, head_bytes, head_last_seq, tail_bytes, dropped_lines, dropped_bytes,
       dropped_through_seq, truncated_at, expired_at)
     VALUES (?, 0, 0, NULL, 0, 0, 0, 0, NULL, ?)
     ON CONFLICT (build_id) DO UPDATE SET expired_at = excluded.expired_at`
  ),
  deleteBuildLog: prepare<[string]>(db, "DELETE FROM log_lines WHERE build_id = ?"),
  // Beyond the app's newest `keep` (a sequence number at or below the (keep + 1)th newest), or created
  // before the cut-off; a null keep binds an offset past every build, a null cut-off compares to nothing.
  buildsToDelete: prepare<
    [{ readonly app: string; readonly keep: number; readonly before: number | null; readonly limit: number }],
    BuildRow
  >(
    db,
    `SELECT * FROM builds WHERE entity_id = @app AND phase = 'stopped' AND (
       sequence_number <= (SELECT sequence_number FROM builds WHERE entity_id = @app
                           ORDER BY sequence_number DESC LIMIT 1 OFFSET @keep)
       OR created_at < @before)
     ORDER BY sequence_number LIMIT @limit`
  ),
  deleteLogStats: prepare<[string]>(db, "DELETE FROM log_stats WHERE build_id = ?"),
  deleteSteps: prepare<[string]>(db, "DELETE FROM build_steps WHERE build_id = ?"),
  deleteBuild: prepare<[string]>(db, "DELETE FROM builds WHERE id = ?"),
  // A version no build names any more goes, unless it is its app's newest: the one a next build would use.
  deleteUnbuiltVersion: prepare<[{ readonly id: string }]>(
    db,
    `DELETE FROM app_versions WHERE id = @id
       AND NOT EXISTS (SELECT 1 FROM builds WHERE app_version_id = @id)
       AND id <> (SELECT n.id FROM app_versions n WHERE n.app_id = app_versions.app_id
                  ORDER BY n.created_at DESC, n.id DESC LIMIT 1)`
  ),
  // Only events fan-out has passed: one not yet fanned out still owes its deliveries.
  pruneEvents: prepare<[number, number]>(
    db,
    `DELETE FROM events WHERE position IN (
       SELECT position FROM events
       WHERE timestamp < ? AND position <= (SELECT position FROM webhook_fanout WHERE id = 1)
       ORDER BY position LIMIT ?)`
  ),
  pruneDeliveries: prepare<[number, number]>(
    db,
    `DELETE FROM webhook_deliveries WHERE position IN (
       SELECT position FROM webhook_deliveries WHERE status <> 'pending' AND created_at < ?
       ORDER BY position LIMIT ?)`
  ),
  // Taken when free or expired, renewed by its holder: one change means the caller holds it.
  takeLease: prepare<
    [{ readonly name: string; readonly owner: string; readonly now: number; readonly ms: number }]
  >(
    db,
    `INSERT INTO leases (name, owner, expires_at) VALUES (@name, @owner, @now + @ms)
     ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
     WHERE leases.owner = excluded.owner OR leases.expires_at <= @now`
  ),

  insertEvent: prepare<[EventRow]>(db, insertInto("events", eventColumns)),
  // The feed across every workspace, on the primary key.
  eventsAfter: prepare<[EventsAfter], PositionedEventRow>(
    db,
    `SELECT * FROM events WHERE position > @after
       AND (@types IS NULL OR type IN (SELECT value FROM json_each(@types)))
     ORDER BY position LIMIT @limit`
  ),
  // One workspace's feed, on its index: a token's read merges its workspaces' pages.
  workspaceEventsAfter: prepare<[EventsAfter & { readonly workspace: string }], PositionedEventRow>(
    db,
    `SELECT * FROM events WHERE workspace_id = @workspace AND position > @after
       AND (@types IS NULL OR type IN (SELECT value FROM json_each(@types)))
     ORDER BY position LIMIT @limit`
  ),
  // The next events fan-out has not moved past, across every workspace.
  eventsToFanOut: prepare<[number], PositionedEventRow>(
    db,
    `SELECT * FROM events WHERE position > (SELECT position FROM webhook_fanout WHERE id = 1)
     ORDER BY position LIMIT ?`
  ),
  moveFanOut: prepare<[number]>(db, "UPDATE webhook_fanout SET position = ? WHERE id = 1"),

  insertWebhook: prepare<[WebhookRow]>(db, insertInto("webhooks", webhookColumns)),
  webhookById: prepare<[string], WebhookRow>(db, "SELECT * FROM webhooks WHERE id = ?"),
  writeWebhook: prepare<[WebhookRow]>(
    db,
    `UPDATE webhooks SET ${webhookColumns
      .filter((column) => !["id", "workspace_id", "created_at"].includes(column))
      .map((column) => `${column} = @${column}`)
      .join(", ")} WHERE id = @id`
  ),
  webhookCount: prepare<[string], { readonly n: number }>(
    db,
    "SELECT count(*) AS n FROM webhooks WHERE workspace_id = ?"
  ),
  workspaceWebhooks: prepare<[string], WebhookRow>(
    db,
    "SELECT * FROM webhooks WHERE workspace_id = ? ORDER BY created_at, id"
  ),
  // `ids` is a JSON array of workspace ids.
  webhooksIn: prepare<[string], WebhookRow>(
    db,
    `SELECT * FROM webhooks WHERE workspace_id IN (SELECT value FROM json_each(?))
     ORDER BY created_at, id`
  ),
  allWebhooks: prepare<[], WebhookRow>(db, "SELECT * FROM webhooks ORDER BY created_at, id"),
  deleteWebhook: prepare<[string]>(db, "DELETE FROM webhooks WHERE id = ?"),
  disableWebhook: prepare<[string, number, string]>(
    db,
    "UPDATE webhooks SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ?"
  ),

  insertDelivery: prepare<[DeliveryRow]>(db, insertInto("webhook_deliveries", deliveryColumns)),
  deliveryById: prepare<[string], DeliveryRow>(db, "SELECT * FROM webhook_deliveries WHERE id = ?"),
  deleteWebhookDeliveries: prepare<[string]>(db, "DELETE FROM webhook_deliveries WHERE webhook_id = ?"),
  // Due, pending, free deliveries of enabled endpoints that are first of their subject for their endpoint,
  // most overdue first, on the partial index of what is pending.
  claimableDeliveries: prepare<[{ readonly now: number; readonly max: number }], ClaimableRow>(
    db,
    `SELECT d.*, w.url, w.secret, w.previous_secret, w.previous_secret_expires_at
     FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
     WHERE d.status = 'pending' AND d.next_attempt_at <= @now AND w.enabled = 1
       AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= @now)
       AND NOT EXISTS (
         SELECT 1 FROM webhook_deliveries e
         WHERE e.webhook_id = d.webhook_id AND e.subject = d.subject AND e.status = 'pending'
           AND e.position < d.position)
     ORDER BY d.next_attempt_at, d.position LIMIT @max`
  ),
  leaseDelivery: prepare<[string, number, number], { readonly lease_claim: number }>(
    db,
    `UPDATE webhook_deliveries SET lease_owner = ?, lease_claim = lease_claim + 1, lease_expires_at = ?
     WHERE position = ? RETURNING lease_claim`
  ),
  // The pending deliveries of a subject to an endpoint after a position, in order: a run's later ones.
  pendingAfter: prepare<
    [{ readonly webhook: string; readonly subject: string; readonly after: number; readonly limit: number }],
    DeliveryRow & { readonly position: number }
  >(
    db,
    `SELECT * FROM webhook_deliveries
     WHERE webhook_id = @webhook AND subject = @subject AND status = 'pending' AND position > @after
     ORDER BY position LIMIT @limit`
  ),
  // Fenced on the lease's owner and claim number, and on the delivery still being pending.
  finishDelivery: prepare<
    [
      ReturnType<typeof SqlRows.attemptColumns> & {
        readonly id: string
        readonly owner: string
        readonly claim: number
      }
    ],
    { readonly webhook_id: string }
  >(
    db,
    `UPDATE webhook_deliveries SET status = @status, attempts = attempts + 1,
       last_attempt_at = @last_attempt_at, last_status_code = @last_status_code, last_error = @last_error,
       last_duration_ms = @last_duration_ms, next_attempt_at = @next_attempt_at,
       delivered_at = @delivered_at, lease_owner = NULL, lease_expires_at = NULL
     WHERE id = @id AND lease_owner = @owner AND lease_claim = @claim AND status = 'pending'
     RETURNING webhook_id`
  ),
  // A lease given back unsent, fenced as a finish is.
  releaseDelivery: prepare<[{ readonly id: string; readonly owner: string; readonly claim: number }]>(
    db,
    `UPDATE webhook_deliveries SET lease_owner = NULL, lease_expires_at = NULL
     WHERE id = @id AND lease_owner = @owner AND lease_claim = @claim AND status = 'pending'`
  ),
  // Newest first, below a position, as a range of the endpoint's index: a deep page reads only itself.
  webhookDeliveries: prepare<
    [{ readonly webhook: string; readonly below: bigint; readonly limit: number }],
    DeliveryRow
  >(
    db,
    `SELECT * FROM webhook_deliveries WHERE webhook_id = @webhook AND position < @below
     ORDER BY position DESC LIMIT @limit`
  ),
  deliveryPosition: prepare<[string, string], { readonly position: number }>(
    db,
    "SELECT position FROM webhook_deliveries WHERE id = ? AND webhook_id = ?"
  ),
  // Pending and due again; the claim number stays, so a sender still holding the old lease is fenced out.
  redeliver: prepare<[number, string], DeliveryRow>(
    db,
    `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, delivered_at = NULL,
       lease_owner = NULL, lease_expires_at = NULL
     WHERE id = ? RETURNING *`
  )
})

export type Statements = ReturnType<typeof prepareStatements>
