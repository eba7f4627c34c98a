/**
 * The fixed SQL statements of the storage's entities and build lifecycle (the feed's and the webhooks' are
 * in `events.ts`, `webhooks.ts` and `deliveries.ts`). Each has a name, so a connection prepares it once and then
 * only binds and executes it; lists are compiled by core's query compiler (`Sql.compileList`). Values are
 * always bound parameters.
 */
import { BuildState } from "@kiln/core"
import { SqlRows } from "@kiln/core/adapter"
import type { Statement } from "./connection.ts"
import { eventColumns, eventsWritten, insertEventRows } from "./events.ts"
import { databaseNow, insertInto, list, placeholders, prepared, unnestOf } from "./sql.ts"

const {
  appColumns,
  appVersionColumns,
  buildColumns,
  buildStateColumns,
  logStatsColumns,
  sourceEventColumns,
  stepColumns,
  tokenColumns,
  triggerColumns,
  workspaceColumns
} = SqlRows

const activePhases = `phase IN (${BuildState.activePhases.map((phase) => `'${phase}'`).join(", ")})`

/** The columns of a trigger that change after it is created. */
export const triggerWriteColumns = triggerColumns.filter(
  (column) => !["id", "workspace_id", "app_id", "created_at"].includes(column)
)
export const tokenInsertColumns = [...tokenColumns, "all_workspaces", "token_hash"] as const

const builds = list(buildColumns)

/**
 * A CTE that announces the changes of the rows a batched write wrote, many to a notification rather than
 * one each, in the listener's `payload` format. `rows` names a CTE with a `change` column: one change or
 * more as JSON, comma-separated. A notification takes rows until they pass 6,000 bytes, so with a row's
 * changes under 2,000 it stays under PostgreSQL's limit of 8,000. Only evaluated when referenced: the
 * statement's answer must read from `announced`.
 */
const announce = (rows: string, channel: string, source: string) => `announced AS (
  SELECT pg_notify(${channel}, '{"source":' || to_json(${source}::text)::text || ',"changes":[' || string_agg(change, ',') || ']}')
  FROM (SELECT change, (sum(octet_length(change)) OVER (ROWS UNBOUNDED PRECEDING) - octet_length(change)) / 6000 AS chunk
        FROM ${rows}) c
  GROUP BY chunk
)`

/** Forces `announce`'s CTE to run: a condition true of every row, evaluated once per statement. */
const announced = "(SELECT count(*) FROM announced) >= 0"

/**
 * The change hint for a claimed build, as JSON built in SQL, since the claim is one statement: it must
 * equal `Storage.buildChanged(build)` (the Postgres tests hold it to that).
 */
const buildChangedJson = `json_build_object('_tag', 'BuildChanged', 'buildId', b.id, 'workspaceId', b.workspace_id,
  'phase', b.phase, 'cancelRequested', b.cancel_requested_at IS NOT NULL)`

/** An epoch-milliseconds column as `DateTime`'s JSON, `2026-01-02T03:04:05.006Z`; null stays null. */
const isoOf = (column: string) =>
  `to_char(to_timestamp(${column} / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '.' || lpad((${column} % 1000)::text, 3, '0') || 'Z'`

/**
 * A claimed build's view (`Build.View`, as `Event.forClaim` puts it in its event), as JSON built in SQL, since
 * the claim and its events are one statement: the conformance suite holds it to the domain's event.
 */
const claimedViewJson = `json_build_object(${[
  ["id", "c.id"],
  ["workspaceId", "c.workspace_id"],
  ["entityId", "c.entity_id"],
  ["appVersionId", "c.app_version_id"],
  ["sequenceNumber", "c.sequence_number"],
  ["outcome", "c.outcome"],
  ["status", "c.status"],
  ["trigger", "c.build_trigger"],
  ["sourceEventId", "c.source_event_id"],
  ["error", "c.error"],
  ["metadata", "c.metadata::json"],
  ["createdBy", "c.created_by"],
  ["createdAt", isoOf("c.created_at")],
  ["updatedAt", isoOf("c.updated_at")],
  ["startedAt", isoOf("c.started_at")],
  ["runningAt", isoOf("c.running_at")],
  ["completedAt", isoOf("c.completed_at")],
  ["cancelRequestedAt", isoOf("c.cancel_requested_at")],
  ["cancelReason", "c.cancel_reason"],
  ["skipReason", "c.skip_reason"],
  ["imageTag", "c.image_tag"],
  ["imageDigest", "c.image_digest"],
  ["commitSha", "c.commit_sha"],
  ["triggerMetadata", "c.trigger_metadata::json"]
]
  .map(([key, value]) => `'${key}', ${value}`)
  .join(", ")})`

/**
 * Claims the builds `pick` selects and locks, as one statement on the database clock, with their events,
 * publishing each claim and the events. This is the Claim event of `BuildState.transition` written in SQL
 * (the Postgres tests hold the two to the same result): queued to initializing under the next attempt,
 * started now, leased until now plus the lease; each claimed build's `build.running` event, oldest first,
 * under the ids given. One statement rather than a transaction of the claim and then its events: a claim of
 * 50 builds took 17 ms so, 4 ms of it the events' statement and the transaction's round trips (dispatch
 * 1,838 → 1,977 builds/s, medians of three runs in turn).
 * Parameters: $1 owner, $2 lease in milliseconds, $3 channel, $4 source, $5 what `pick` takes, $6 event ids.
 */
const claim = (pick: string) => `WITH clock AS (SELECT ${databaseNow} AS now),
picked AS MATERIALIZED (${pick}),
claimed AS (
  UPDATE builds b
  SET phase = 'initializing', status = '${BuildState.toStatus({ phase: "initializing", outcome: null })}',
    owner = $1, attempt = b.attempt + 1, started_at = clock.now, updated_at = clock.now,
    lease_expires_at = clock.now + $2
  FROM picked, clock
  WHERE b.id = picked.id AND b.phase = 'queued'
  RETURNING b.*, ${buildChangedJson}::text AS change
),
announced_events AS (
  INSERT INTO events (id, workspace_id, type, subject, "timestamp", data)
  SELECT ($6::text[])[row_number() OVER (ORDER BY c.created_at, c.id)], c.workspace_id, 'build.running', c.id,
    c.updated_at, json_build_object('build', ${claimedViewJson})::text
  FROM claimed c ORDER BY c.created_at, c.id
  RETURNING 1
),
changes AS (
  SELECT change FROM claimed
  UNION ALL SELECT '${JSON.stringify(eventsWritten)}' WHERE EXISTS (SELECT 1 FROM announced_events)
),
${announce("changes", "$3", "$4")}
SELECT ${builds} FROM claimed WHERE ${announced} ORDER BY created_at, id`

/** The SQL type of each build state column, for the arrays the batched writes unnest. */
const buildStateTypes: Record<(typeof buildStateColumns)[number], string> = {
  phase: "text",
  outcome: "text",
  status: "text",
  error: "text",
  updated_at: "bigint",
  started_at: "bigint",
  running_at: "bigint",
  completed_at: "bigint",
  cancel_requested_at: "bigint",
  cancel_reason: "text",
  skip_reason: "text",
  image_tag: "text",
  image_digest: "text",
  owner: "text",
  attempt: "numeric",
  lease_expires_at: "bigint"
}

const stateColumnTypes = buildStateColumns.map((column) => [column, buildStateTypes[column]] as const)

/**
 * Many builds' owner writes as one statement, each a log append, a state change, or an append and then a
 * state change, applied whole or not at all. An append holds only while its fence holds and the build's
 * last stored seq is still the one its plan started from; a state change is a compare-and-set on every
 * state column as it was read. So a write stores exactly what the locking path would, and a build anyone
 * changed since is left alone (its caller takes the locking path). Rows are locked in id order, so two
 * batches never deadlock. Parameters, one array element per write: the build, the append's owner,
 * attempt, expected last seq and new bookkeeping (null without an append), the new state's columns and
 * the old state's (null without a state change), the changes to announce as JSON; then the lines of every
 * append, the events of every write with each one's build (stored only with their write), the channel and
 * this storage's source tag. Answers the builds written.
 */
const writeBatch = (() => {
  const columns = [
    ["id", "text"],
    ["owner", "text"],
    ["attempt", "numeric"],
    ["expected", "bigint"],
    ...logStatsColumns.slice(1).map((column) => [column, "bigint"] as const),
    ...stateColumnTypes.map(([column, type]) => [`new_${column}`, type] as const),
    ...stateColumnTypes.map(([column, type]) => [`old_${column}`, type] as const),
    ["change", "text"]
  ] as const
  const lineColumns = [
    ["build_id", "text"],
    ["seq", "bigint"],
    ["ts", "bigint"],
    ["stream", "text"],
    ["step", "text"],
    ["text", "text"]
  ] as const
  const events = columns.length + lineColumns.length + 1
  const next = events + eventColumns.length + 1
  return `WITH r AS (SELECT * FROM ${unnestOf("r", columns)}),
ok AS MATERIALIZED (
  SELECT r.* FROM r JOIN builds b ON b.id = r.id LEFT JOIN log_stats s ON s.build_id = r.id
  WHERE (r.expected IS NULL OR (b.owner = r.owner AND b.attempt = r.attempt AND b.${activePhases}
      AND coalesce(s.last_seq, 0) = r.expected))
    AND (r.new_phase IS NULL OR (${list(buildStateColumns, "b")}) IS NOT DISTINCT FROM (${buildStateColumns
      .map((column) => `r.old_${column}`)
      .join(", ")}))
  ORDER BY b.id FOR NO KEY UPDATE OF b
), inserted AS (
  INSERT INTO log_lines (build_id, seq, ts, stream, step, text)
  SELECT l.* FROM ${unnestOf("l", lineColumns, columns.length + 1)}
  WHERE l.build_id IN (SELECT id FROM ok)
), stats AS (
  INSERT INTO log_stats (${list(logStatsColumns)}) SELECT id, ${list(logStatsColumns.slice(1))} FROM ok
  WHERE expected IS NOT NULL
  ON CONFLICT (build_id) DO UPDATE SET ${logStatsColumns
    .slice(1)
    .map((column) => `${column} = EXCLUDED.${column}`)
    .join(", ")}
), written AS (
  UPDATE builds b SET ${buildStateColumns.map((column) => `${column} = ok.new_${column}`).join(", ")}
  FROM ok WHERE b.id = ok.id AND ok.new_phase IS NOT NULL
), stored_events AS (${insertEventRows(events, "SELECT id FROM ok")}
),
${announce("ok", `$${next}`, `$${next + 1}`)}
SELECT id FROM ok WHERE ${announced}`
})()

export const statements = {
  ping: prepared("ping", "SELECT 1"),
  insertWorkspace: prepared("insert_workspace", insertInto("workspaces", workspaceColumns)),
  oldestWorkspace: prepared(
    "oldest_workspace",
    `SELECT ${list(workspaceColumns)} FROM workspaces ORDER BY created_at, id LIMIT 1`
  ),
  workspaceById: prepared(
    "workspace_by_id",
    `SELECT ${list(workspaceColumns)} FROM workspaces WHERE id = $1`
  ),
  // Locks the workspace against other keyed build creations: an idempotency key is unique per workspace.
  lockWorkspace: prepared("lock_workspace", "SELECT 1 FROM workspaces WHERE id = $1 FOR NO KEY UPDATE"),
  existingWorkspaces: prepared("existing_workspaces", "SELECT id FROM workspaces WHERE id = ANY($1::text[])"),

  // Inserts unless the workspace is missing or the handle taken; no row back means one of the two.
  insertApp: prepared(
    "insert_app",
    `INSERT INTO apps (${list(appColumns)}) SELECT ${placeholders(appColumns.length)}
     WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = $2)
     ON CONFLICT (workspace_id, handle) DO NOTHING RETURNING id`
  ),
  appById: prepared("app_by_id", `SELECT ${list(appColumns)} FROM apps WHERE id = $1`),
  // Takes gapless sequence numbers of several apps in the transaction that inserts the builds; answers the
  // last one taken of each.
  nextBuildSequences: prepared(
    "next_build_sequences",
    `UPDATE apps a SET build_sequence = a.build_sequence + t.count
     FROM unnest($1::text[], $2::int[]) AS t(id, count) WHERE a.id = t.id
     RETURNING a.id, a.build_sequence`
  ),

  insertAppVersion: prepared("insert_app_version", insertInto("app_versions", appVersionColumns)),
  appVersionById: prepared(
    "app_version_by_id",
    `SELECT ${list(appVersionColumns)} FROM app_versions WHERE id = $1`
  ),
  lockAppVersion: prepared(
    "lock_app_version",
    `SELECT ${list(appVersionColumns)} FROM app_versions WHERE id = $1 FOR NO KEY UPDATE`
  ),
  // The versions to build, locking their apps in id order: creations of one app's builds take turns, so
  // sequence numbers and the idempotency checks see every build created before, and two batches never
  // lock each other's apps in a cycle.
  versionsToBuild: prepared(
    "versions_to_build",
    `SELECT ${list(appVersionColumns, "v")} FROM app_versions v JOIN apps a ON a.id = v.app_id
     WHERE v.id = ANY($1::text[]) ORDER BY a.id FOR NO KEY UPDATE OF a`
  ),
  resolveAppVersion: prepared(
    "resolve_app_version",
    "UPDATE app_versions SET status = $2, source = $3, commit_sha = $4, error = $5, updated_at = $6 WHERE id = $1"
  ),

  insertTrigger: prepared("insert_trigger", insertInto("triggers", triggerColumns)),
  triggerById: prepared("trigger_by_id", `SELECT ${list(triggerColumns)} FROM triggers WHERE id = $1`),
  lockTrigger: prepared(
    "lock_trigger",
    `SELECT ${list(triggerColumns)} FROM triggers WHERE id = $1 FOR NO KEY UPDATE`
  ),
  // $1 the id, then every column an update or a deletion may change, in `triggerWriteColumns` order.
  writeTrigger: prepared(
    "write_trigger",
    `UPDATE triggers SET ${triggerWriteColumns.map((column, i) => `${column} = $${i + 2}`).join(", ")} WHERE id = $1`
  ),
  activeTriggers: prepared(
    "active_triggers",
    `SELECT ${list(triggerColumns)} FROM triggers WHERE workspace_id = $1 AND deleted_at IS NULL
     ORDER BY created_at, id`
  ),

  // Inserts unless the workspace is missing or the delivery recorded; no row back means one of the two.
  insertSourceEvent: prepared(
    "insert_source_event",
    `INSERT INTO source_events (${list(sourceEventColumns)}) SELECT ${placeholders(sourceEventColumns.length)}
     WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = $2)
     ON CONFLICT (workspace_id, delivery_id) DO NOTHING RETURNING id`
  ),
  sourceEventById: prepared(
    "source_event_by_id",
    `SELECT ${list(sourceEventColumns)} FROM source_events WHERE id = $1`
  ),
  sourceEventByDelivery: prepared(
    "source_event_by_delivery",
    `SELECT ${list(sourceEventColumns)} FROM source_events WHERE workspace_id = $1 AND delivery_id = $2`
  ),

  insertToken: prepared("insert_token", insertInto("api_tokens", tokenInsertColumns)),
  grantTokenWorkspaces: prepared(
    "grant_token_workspaces",
    "INSERT INTO token_workspaces (token_id, workspace_id) SELECT $1, unnest($2::text[])"
  ),
  tokenById: prepared("token_by_id", `SELECT ${list(tokenColumns)} FROM api_tokens WHERE id = $1`),
  tokenByHash: prepared(
    "token_by_hash",
    `SELECT ${list(tokenColumns)} FROM api_tokens WHERE token_hash = $1`
  ),
  // The first token and how many there are, for a first start to see whether one was issued.
  oldestToken: prepared(
    "oldest_token",
    `SELECT ${list(tokenColumns)}, (count(*) OVER ())::int AS tokens FROM api_tokens ORDER BY created_at, id LIMIT 1`
  ),
  // Revoking twice keeps the first time.
  revokeToken: prepared(
    "revoke_token",
    `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING ${list(tokenColumns)}`
  ),

  // The rows as one JSON array, typed by the table's own row type: one statement for a batch of any size.
  insertBuilds: prepared(
    "insert_builds",
    `WITH inserted AS (
       INSERT INTO builds (${list(buildColumns)})
       SELECT ${list(buildColumns)} FROM json_populate_recordset(NULL::builds, $1::json)
     )
     SELECT pg_notify($2, payload) FROM unnest($3::text[]) AS payload`
  ),
  buildById: prepared("build_by_id", `SELECT ${builds} FROM builds WHERE id = $1`),
  // Fenced writes lock the build: they take turns with each other and with every state change.
  lockBuild: prepared("lock_build", `SELECT ${builds} FROM builds WHERE id = $1 FOR NO KEY UPDATE`),
  // A key and a source event may point at different builds; the one created first answers both.
  existingBuild: prepared(
    "existing_build",
    `SELECT ${builds} FROM builds
     WHERE (workspace_id = $1 AND idempotency_key = $2) OR (entity_id = $3 AND source_event_id = $4)
     ORDER BY created_at, id LIMIT 1`
  ),
  // One statement, so one snapshot: the steps come as a JSON array of step rows.
  buildWithSteps: prepared(
    "build_with_steps",
    `SELECT ${builds}, (
       SELECT coalesce(json_agg(s ORDER BY s.idx), '[]') FROM build_steps s WHERE s.build_id = b.id
     ) AS steps
     FROM builds b WHERE b.id = $1`
  ),
  // Every state change is a compare-and-set on the phase and fence it was computed from, publishing the
  // change in the same transaction.
  writeBuildState: prepared(
    "write_build_state",
    `UPDATE builds SET ${buildStateColumns.map((column, i) => `${column} = $${i + 2}`).join(", ")}
     WHERE id = $1 AND phase = $${buildStateColumns.length + 2}
       AND owner IS NOT DISTINCT FROM $${buildStateColumns.length + 3} AND attempt = $${buildStateColumns.length + 4}
     RETURNING pg_notify($${buildStateColumns.length + 5}, $${buildStateColumns.length + 6})`
  ),
  // Lease renewals, many in one statement (`PgStorage`'s heartbeat batcher), each fenced on its owner and
  // attempt and on the build being active: the builds renewed come back.
  heartbeatBatch: prepared(
    "heartbeat_batch",
    `UPDATE builds b SET lease_expires_at = ${databaseNow} + h.lease_ms
     FROM unnest($1::text[], $2::text[], $3::numeric[], $4::bigint[]) AS h(id, owner, attempt, lease_ms)
     WHERE b.id = h.id AND b.owner = h.owner AND b.attempt = h.attempt AND b.${activePhases}
     RETURNING ${list(buildColumns, "b")}`
  ),
  // Oldest first on the partial queue index; a build another claimer holds is skipped, not waited for.
  claimOldest: prepared(
    "claim_oldest",
    claim(
      "SELECT id FROM builds WHERE phase = 'queued' ORDER BY created_at, id LIMIT $5 FOR UPDATE SKIP LOCKED"
    )
  ),
  // Held until the transaction ends: claims with caps (see `claimNext`) and first starts (`bootstrap`) each
  // take turns on a key of their own (`lockKey`).
  advisoryLock: prepared("advisory_lock", "SELECT pg_advisory_xact_lock($1::bigint)"),
  // Active builds per workspace and app, on their partial index.
  activeCounts: prepared(
    "active_counts",
    `SELECT workspace_id, entity_id, count(*) AS active FROM builds WHERE ${activePhases}
     GROUP BY workspace_id, entity_id`
  ),
  // Claim candidates, oldest first, as `Claim.select` reads them; a claim's compare-and-set skips one
  // another claimer took meanwhile.
  queuedOldest: prepared(
    "queued_oldest",
    `SELECT ${builds} FROM builds WHERE phase = 'queued' ORDER BY created_at, id LIMIT $1`
  ),
  // Expired by $1, the transaction's reading of the database clock; a build another transaction holds is
  // left for the next round.
  expiredLeases: prepared(
    "expired_leases",
    `SELECT ${builds} FROM builds WHERE ${activePhases} AND lease_expires_at <= $1
     FOR NO KEY UPDATE SKIP LOCKED`
  ),
  // Retention (DESIGN.md §12). Candidates are locked, skipping builds another write holds: a pass never
  // waits on a claim or an owner's write, and takes them on its next batch or pass.
  logsToExpire: prepared(
    "logs_to_expire",
    `SELECT ${list(buildColumns, "b")} FROM builds b LEFT JOIN log_stats s ON s.build_id = b.id
     WHERE b.entity_id = $1 AND b.created_at < $2 AND b.phase = 'stopped' AND b.completed_at < $2
       AND s.expired_at IS NULL
     ORDER BY b.created_at, b.id LIMIT $3 FOR NO KEY UPDATE OF b SKIP LOCKED`
  ),
  expireLogs: prepared(
    "expire_logs",
    `WITH gone AS (DELETE FROM log_lines WHERE build_id = ANY($1::text[]))
     INSERT INTO log_stats (${logStatsColumns.join(", ")}, expired_at)
     SELECT id, 0, 0, NULL, 0, 0, 0, 0, NULL, $2 FROM unnest($1::text[]) AS id
     ON CONFLICT (build_id) DO UPDATE SET expired_at = EXCLUDED.expired_at`
  ),
  // Beyond the app's newest $2 (at or below the ($2 + 1)th newest sequence number), or created before $3;
  // with no count the caller binds an offset past every build.
  buildsToDelete: prepared(
    "builds_to_delete",
    `SELECT ${builds} FROM builds WHERE entity_id = $1 AND phase = 'stopped' AND (
       sequence_number <= (SELECT sequence_number FROM builds WHERE entity_id = $1
                           ORDER BY sequence_number DESC LIMIT 1 OFFSET $2)
       OR created_at < $3)
     ORDER BY sequence_number LIMIT $4 FOR UPDATE SKIP LOCKED`
  ),
  // Referencing rows first, in the same statement: foreign keys are checked at its end.
  deleteBuilds: prepared(
    "delete_builds",
    `WITH lines AS (DELETE FROM log_lines WHERE build_id = ANY($1::text[])),
       stats AS (DELETE FROM log_stats WHERE build_id = ANY($1::text[])),
       steps AS (DELETE FROM build_steps WHERE build_id = ANY($1::text[]))
     DELETE FROM builds WHERE id = ANY($1::text[])`
  ),
  // A version no build names any more goes, unless it is its app's newest: the one a next build would use.
  deleteUnbuiltVersions: prepared(
    "delete_unbuilt_versions",
    `DELETE FROM app_versions v WHERE v.id = ANY($1::text[])
       AND NOT EXISTS (SELECT 1 FROM builds b WHERE b.app_version_id = v.id)
       AND v.id <> (SELECT n.id FROM app_versions n WHERE n.app_id = v.app_id
                    ORDER BY n.created_at DESC, n.id DESC LIMIT 1)`
  ),
  // Only events fan-out has passed (one not yet fanned out still owes its deliveries), and deliveries no
  // longer pending.
  pruneEvents: prepared(
    "prune_events",
    `WITH events_gone AS (
       DELETE FROM events WHERE (xid, seq) IN (
         SELECT e.xid, e.seq FROM events e, webhook_fanout f
         WHERE e.timestamp < $1 AND (e.xid, e.seq) <= (f.xid, f.seq)
         ORDER BY e.xid, e.seq LIMIT $2)
       RETURNING 1),
     deliveries_gone AS (
       DELETE FROM webhook_deliveries WHERE seq IN (
         SELECT seq FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1 ORDER BY seq LIMIT $2)
       RETURNING 1)
     SELECT (SELECT count(*) FROM events_gone) + (SELECT count(*) FROM deliveries_gone) AS pruned`
  ),
  // Taken when free or expired, renewed by its holder, on the database clock: a row back means held.
  takeLease: prepared(
    "take_lease",
    `INSERT INTO leases (name, owner, expires_at) VALUES ($1, $2, ${databaseNow} + $3)
     ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
     WHERE leases.owner = EXCLUDED.owner OR leases.expires_at <= ${databaseNow}
     RETURNING 1 AS held`
  ),
  // The database clock, which leases are taken and reaped on.
  clock: prepared("clock", `SELECT ${databaseNow} AS now`),

  upsertStep: prepared(
    "upsert_step",
    `${insertInto("build_steps", stepColumns)} ON CONFLICT (build_id, idx) DO UPDATE SET
     ${stepColumns
       .slice(2)
       .map((column) => `${column} = EXCLUDED.${column}`)
       .join(", ")}`
  ),

  writeBatch: prepared("write_batch", writeBatch),

  logStats: prepared("log_stats", `SELECT ${list(logStatsColumns)} FROM log_stats WHERE build_id = $1`),
  // The sizes of the oldest tail lines, for LogBudget.planTrim; read in batches, as far as it needs.
  tailLineSizes: prepared(
    "tail_line_sizes",
    `SELECT seq, octet_length(text) AS bytes FROM log_lines WHERE build_id = $1 AND seq >= $2
     ORDER BY seq LIMIT $3`
  ),
  // An append's writes as one statement: the new lines, the trimmed ones deleted, the budget's
  // bookkeeping, and the change published.
  writeLogs: prepared(
    "write_logs",
    `WITH inserted AS (
       INSERT INTO log_lines (build_id, seq, ts, stream, step, text)
       SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[])
     ), trimmed AS (
       DELETE FROM log_lines WHERE build_id = $1 AND seq BETWEEN $7 AND $8
     ), stats AS (
       INSERT INTO log_stats (${list(logStatsColumns)}) VALUES ($1, ${placeholders(logStatsColumns.length - 1, 9)})
       ON CONFLICT (build_id) DO UPDATE SET ${logStatsColumns
         .slice(1)
         .map((column) => `${column} = EXCLUDED.${column}`)
         .join(", ")}
     )
     SELECT pg_notify($17, $18)`
  ),
  // One statement, so one snapshot: the build's workspace, the budget's bookkeeping and a page of lines.
  readLogs: prepared(
    "read_logs",
    `SELECT b.workspace_id,
       (SELECT row_to_json(s) FROM log_stats s WHERE s.build_id = b.id) AS stats,
       (SELECT coalesce(json_agg(l ORDER BY l.seq), '[]') FROM (
          SELECT seq, ts, stream, step, text FROM log_lines WHERE build_id = b.id AND seq > $2 ORDER BY seq LIMIT $3
        ) l) AS lines
     FROM builds b WHERE b.id = $1`
  )
} satisfies Record<string, Statement>
