/**
 * The schema, as numbered, append-only migrations: a released migration never changes, a change is a
 * new one. Each is recorded in `kiln_migrations`, inside the storage's schema, by the transaction that
 * applies it.
 *
 * Conventions, shared with the SQLite storage so that core's compiled SQL and row mapping (`SqlRows`) fit
 * both: the same table and column names; timestamps are BIGINT epoch milliseconds; JSON values are TEXT,
 * exactly as written. Every text column is COLLATE "C", so text compares by code point as it does on
 * SQLite and in the in-memory evaluator. The query language's numbers (`sequenceNumber`, `attempt`, a
 * step's `index` and `exitCode`) are NUMERIC, so a filter may compare them with any finite number.
 */
import { StorageError } from "@kiln/core"
import { SqlRows } from "@kiln/core/adapter"
import { Effect } from "effect"
import { type Database, lockKey, quoteIdentifier } from "./connection.ts"
import { databaseNow } from "./sql.ts"

export interface Migration {
  readonly version: number
  /** Lowercase words and underscores: it is written into the migration's SQL as a literal. */
  readonly name: string
  readonly sql: string
}

const createSchema = `
CREATE TABLE workspaces (
  id TEXT COLLATE "C" PRIMARY KEY,
  name TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX workspaces_list ON workspaces (created_at, id);

CREATE TABLE apps (
  id TEXT COLLATE "C" PRIMARY KEY,
  workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id),
  handle TEXT COLLATE "C" NOT NULL,
  name TEXT COLLATE "C" NOT NULL,
  kind TEXT COLLATE "C" NOT NULL,
  build_settings TEXT COLLATE "C" NOT NULL,
  -- The last sequence number given to a build of this app. Incrementing it in the transaction that
  -- inserts the build keeps the numbers gapless, across processes too.
  build_sequence BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  UNIQUE (workspace_id, handle)
);
CREATE INDEX apps_list_by_workspace ON apps (workspace_id, created_at, id);
CREATE INDEX apps_list ON apps (created_at, id);

CREATE TABLE app_versions (
  id TEXT COLLATE "C" PRIMARY KEY,
  workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id),
  app_id TEXT COLLATE "C" NOT NULL REFERENCES apps (id),
  status TEXT COLLATE "C" NOT NULL,
  source TEXT COLLATE "C" NOT NULL,
  -- The source's type as a plain column, for filters.
  source_type TEXT COLLATE "C" NOT NULL,
  commit_sha TEXT COLLATE "C",
  error TEXT COLLATE "C",
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX app_versions_list_by_workspace ON app_versions (workspace_id, created_at, id);
CREATE INDEX app_versions_list ON app_versions (created_at, id);
CREATE INDEX app_versions_by_app ON app_versions (app_id, created_at, id);

CREATE TABLE source_events (
  id TEXT COLLATE "C" PRIMARY KEY,
  workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id),
  delivery_id TEXT COLLATE "C" NOT NULL,
  kind TEXT COLLATE "C" NOT NULL,
  repository TEXT COLLATE "C" NOT NULL,
  branch TEXT COLLATE "C",
  commit_sha TEXT COLLATE "C",
  changed_paths TEXT COLLATE "C" NOT NULL,
  author TEXT COLLATE "C",
  message TEXT COLLATE "C",
  received_at BIGINT NOT NULL,
  -- A redelivered push is the same event.
  UNIQUE (workspace_id, delivery_id)
);

CREATE TABLE api_tokens (
  id TEXT COLLATE "C" PRIMARY KEY,
  name TEXT COLLATE "C" NOT NULL,
  -- JSON: the string "*" or an array of workspace ids; the record the token is read from.
  workspace_ids TEXT COLLATE "C" NOT NULL,
  -- The grants again, for scope checks: "*" as a flag, the rest as token_workspaces rows.
  all_workspaces BOOLEAN NOT NULL,
  role TEXT COLLATE "C" NOT NULL,
  -- Only the SHA-256 of the secret is stored, and it is never read back out.
  token_hash TEXT COLLATE "C" NOT NULL UNIQUE,
  created_at BIGINT NOT NULL,
  expires_at BIGINT,
  revoked_at BIGINT
);
CREATE INDEX api_tokens_list ON api_tokens (created_at, id);
CREATE TABLE token_workspaces (
  token_id TEXT COLLATE "C" NOT NULL REFERENCES api_tokens (id),
  workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id),
  PRIMARY KEY (token_id, workspace_id)
);

CREATE TABLE builds (
  id TEXT COLLATE "C" PRIMARY KEY,
  workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id),
  entity_id TEXT COLLATE "C" NOT NULL REFERENCES apps (id),
  app_version_id TEXT COLLATE "C" NOT NULL REFERENCES app_versions (id),
  sequence_number NUMERIC NOT NULL,
  phase TEXT COLLATE "C" NOT NULL,
  outcome TEXT COLLATE "C",
  -- Derived from phase and outcome, stored so that lists can filter on the canonical status.
  status TEXT COLLATE "C" NOT NULL,
  build_trigger TEXT COLLATE "C" NOT NULL,
  source_event_id TEXT COLLATE "C" REFERENCES source_events (id),
  idempotency_key TEXT COLLATE "C",
  error TEXT COLLATE "C",
  metadata TEXT COLLATE "C" NOT NULL,
  created_by TEXT COLLATE "C",
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  started_at BIGINT,
  running_at BIGINT,
  completed_at BIGINT,
  cancel_requested_at BIGINT,
  cancel_reason TEXT COLLATE "C",
  skip_reason TEXT COLLATE "C",
  image_tag TEXT COLLATE "C",
  image_digest TEXT COLLATE "C",
  commit_sha TEXT COLLATE "C",
  trigger_metadata TEXT COLLATE "C",
  owner TEXT COLLATE "C",
  attempt NUMERIC NOT NULL,
  lease_expires_at BIGINT,
  UNIQUE (entity_id, sequence_number),
  -- NULLs are distinct, so these constrain only builds that carry an event or a key.
  UNIQUE (entity_id, source_event_id),
  UNIQUE (workspace_id, idempotency_key)
);
-- The claim takes queued builds oldest first. Partial, so it holds only the queue, not the history; a
-- query uses it only when its WHERE repeats phase = 'queued' as a literal.
CREATE INDEX builds_queued ON builds (created_at, id) WHERE phase = 'queued';
-- Active builds (claimed, not stopped): counted per workspace and app for the claim caps, and scanned
-- by lease expiry for the reaper. Partial for the same reason as the queue.
CREATE INDEX builds_active ON builds (workspace_id, entity_id) WHERE phase IN ('initializing', 'running');
CREATE INDEX builds_active_by_lease ON builds (lease_expires_at) WHERE phase IN ('initializing', 'running');
-- Keyset pages, newest first: within a caller's workspaces, within an app, and across all of them.
CREATE INDEX builds_list_by_workspace ON builds (workspace_id, created_at, id);
CREATE INDEX builds_by_app ON builds (entity_id, created_at, id);
CREATE INDEX builds_list ON builds (created_at, id);

CREATE TABLE build_steps (
  build_id TEXT COLLATE "C" NOT NULL REFERENCES builds (id),
  idx NUMERIC NOT NULL,
  name TEXT COLLATE "C" NOT NULL,
  status TEXT COLLATE "C" NOT NULL,
  started_at BIGINT NOT NULL,
  completed_at BIGINT,
  exit_code NUMERIC,
  error TEXT COLLATE "C",
  PRIMARY KEY (build_id, idx)
);

CREATE TABLE log_lines (
  build_id TEXT COLLATE "C" NOT NULL REFERENCES builds (id),
  seq BIGINT NOT NULL,
  ts BIGINT NOT NULL,
  stream TEXT COLLATE "C" NOT NULL,
  step TEXT COLLATE "C",
  text TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (build_id, seq)
);

-- The log budget's bookkeeping (LogBudget.Stats), one row per build that has logged. Appends to a
-- build's log are serialized by locking the build's row.
CREATE TABLE log_stats (
  build_id TEXT COLLATE "C" PRIMARY KEY REFERENCES builds (id),
  last_seq BIGINT NOT NULL,
  head_bytes BIGINT NOT NULL,
  head_last_seq BIGINT,
  tail_bytes BIGINT NOT NULL,
  dropped_lines BIGINT NOT NULL,
  dropped_bytes BIGINT NOT NULL,
  dropped_through_seq BIGINT NOT NULL,
  truncated_at BIGINT
)`

const triggers = `
CREATE TABLE triggers (
  id TEXT COLLATE "C" PRIMARY KEY,
  workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id),
  app_id TEXT COLLATE "C" NOT NULL REFERENCES apps (id),
  name TEXT COLLATE "C" NOT NULL,
  repository TEXT COLLATE "C",
  branch_includes TEXT NOT NULL,
  branch_excludes TEXT NOT NULL,
  path_includes TEXT NOT NULL,
  path_excludes TEXT NOT NULL,
  build_command TEXT,
  deploy_command TEXT,
  root_directory TEXT,
  caching_enabled BOOLEAN NOT NULL,
  environment TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  deleted_at BIGINT
);
-- A push reads the live triggers of its workspace.
CREATE INDEX triggers_live ON triggers (workspace_id, created_at, id) WHERE deleted_at IS NULL;
`

// Uploaded archives (see PgArchiveStore.ts): a row per blob, named by the SHA-256 of its bytes, and the
// bytes in chunks. A put streams the chunks in before it knows their hash, under an id of its own, then
// names them in the same transaction, so a blob is seen whole or not at all.
const archives = `
CREATE TABLE archive_blobs (
  sha256 TEXT COLLATE "C" PRIMARY KEY,
  blob_id UUID NOT NULL UNIQUE,
  size_bytes BIGINT NOT NULL,
  -- Every chunk but the last holds this many bytes.
  chunk_bytes INTEGER NOT NULL,
  -- When the blob was last put, on the database's clock: a sweep removes only blobs older than its
  -- grace period, so one put for a version about to be created is kept.
  stored_at BIGINT NOT NULL
);
CREATE TABLE archive_chunks (
  -- Checked at commit: the chunks are written before the blob's row.
  blob_id UUID NOT NULL REFERENCES archive_blobs (blob_id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
  idx INTEGER NOT NULL,
  data BYTEA NOT NULL,
  PRIMARY KEY (blob_id, idx)
);
-- Archives are gzip already: trying to compress a chunk again only costs time. Measured with 50 MB of
-- random bytes in 1 MiB chunks, one statement at a time: 116-121 MB/s stored with compression tried,
-- 136-141 MB/s without.
ALTER TABLE archive_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
-- A sweep asks which archives versions name.
CREATE INDEX app_versions_by_commit ON app_versions (commit_sha);
`

// Events and webhooks (DESIGN.md §11). Events are written by the transaction of the change they describe.
// Their order is the writing transaction's id, then an insertion counter: a transaction's id is taken
// before it commits, so a reader returns only events of transactions older than every one still running
// (pg_snapshot_xmin), and no event can then commit before a cursor already handed out. Events and
// deliveries do not reference workspaces: a foreign key would share-lock the workspace's row in every
// transaction that writes them.
const eventsAndWebhooks = `
CREATE TABLE events (
  xid XID8 NOT NULL DEFAULT pg_current_xact_id(),
  seq BIGSERIAL NOT NULL,
  id TEXT COLLATE "C" NOT NULL,
  workspace_id TEXT COLLATE "C" NOT NULL,
  type TEXT COLLATE "C" NOT NULL,
  subject TEXT COLLATE "C" NOT NULL,
  timestamp BIGINT NOT NULL,
  data TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (xid, seq)
);
-- A reader of some workspaces pages through theirs alone.
CREATE INDEX events_by_workspace ON events (workspace_id, xid, seq);

CREATE TABLE webhooks (
  id TEXT COLLATE "C" PRIMARY KEY,
  workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id),
  url TEXT COLLATE "C" NOT NULL,
  -- JSON: the event types it receives; every type when empty.
  types TEXT COLLATE "C" NOT NULL,
  enabled BOOLEAN NOT NULL,
  disabled_reason TEXT COLLATE "C",
  -- Deliveries are signed with these, so they are kept as given; they are never read back by the API.
  secret TEXT COLLATE "C" NOT NULL,
  previous_secret TEXT COLLATE "C",
  previous_secret_expires_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX webhooks_by_workspace ON webhooks (workspace_id, created_at, id);

CREATE TABLE webhook_deliveries (
  -- Insertion order: an endpoint gets one subject's deliveries in this order.
  seq BIGSERIAL PRIMARY KEY,
  id TEXT COLLATE "C" NOT NULL UNIQUE,
  webhook_id TEXT COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  workspace_id TEXT COLLATE "C" NOT NULL,
  event_id TEXT COLLATE "C" NOT NULL,
  event_type TEXT COLLATE "C" NOT NULL,
  subject TEXT COLLATE "C" NOT NULL,
  -- The request body, the same on every attempt.
  body TEXT COLLATE "C" NOT NULL,
  status TEXT COLLATE "C" NOT NULL,
  attempts INTEGER NOT NULL,
  last_attempt_at BIGINT,
  last_status_code INTEGER,
  last_error TEXT COLLATE "C",
  last_duration_ms INTEGER,
  next_attempt_at BIGINT,
  created_at BIGINT NOT NULL,
  delivered_at BIGINT,
  -- The sender holding it, fenced like a build's claim: the claim number grows with every lease.
  lease_owner TEXT COLLATE "C",
  lease_claim INTEGER NOT NULL DEFAULT 0,
  lease_expires_at BIGINT
);
-- The claim takes due deliveries; partial, so it holds only what is still to send.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, seq) WHERE status = 'pending';
-- The claim's order check: an earlier delivery of the same subject to the same endpoint still pending.
CREATE INDEX webhook_deliveries_pending_by_subject ON webhook_deliveries (webhook_id, subject, seq)
  WHERE status = 'pending';
-- An endpoint's delivery log, newest first.
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, seq);

-- How far the webhook fan-out has read the feed: one row, locked by the process fanning out.
CREATE TABLE webhook_fanout (
  id BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
  xid XID8 NOT NULL,
  seq BIGINT NOT NULL
);
INSERT INTO webhook_fanout (xid, seq) VALUES ('0', 0);
`

// Retention (DESIGN.md §12): when a log expired, which builds a version still has (deleting a version checks
// its foreign key on this), and the leases that let one process at a time run a pass.
const retention = `
ALTER TABLE log_stats ADD COLUMN expired_at BIGINT;
CREATE INDEX builds_by_version ON builds (app_version_id);
CREATE TABLE leases (
  name TEXT COLLATE "C" PRIMARY KEY,
  owner TEXT COLLATE "C" NOT NULL,
  expires_at BIGINT NOT NULL
);
`

// Exact list totals (DESIGN.md §4): builds counted per workspace, app, status, trigger and creator, kept in
// the transaction of every statement that inserts, changes or deletes builds, so a total over equalities
// on those fields sums a few rows instead of counting the builds. A build without a creator counts under
// ''. Statement triggers fold a whole statement's rows (a claim of 40, a batch of completions) into one
// upsert per count, in key order, so statements that touch the same counts lock them in the same order.
// The functions name the table bare; migration 8 pins their search_path to the schema.
const buildCounts = `
CREATE TABLE build_counts (
  workspace_id TEXT COLLATE "C" NOT NULL,
  entity_id TEXT COLLATE "C" NOT NULL,
  status TEXT COLLATE "C" NOT NULL,
  build_trigger TEXT COLLATE "C" NOT NULL,
  created_by TEXT COLLATE "C" NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (workspace_id, entity_id, status, build_trigger, created_by)
);
INSERT INTO build_counts (workspace_id, entity_id, status, build_trigger, created_by, n)
  SELECT workspace_id, entity_id, status, build_trigger, coalesce(created_by, ''), count(*)
  FROM builds GROUP BY 1, 2, 3, 4, 5;
CREATE FUNCTION build_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO build_counts AS c (workspace_id, entity_id, status, build_trigger, created_by, n)
  SELECT workspace_id, entity_id, status, build_trigger, coalesce(created_by, ''), count(*)
  FROM added_builds GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (workspace_id, entity_id, status, build_trigger, created_by) DO UPDATE SET n = c.n + excluded.n;
  RETURN NULL;
END $$;
CREATE FUNCTION build_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO build_counts AS c (workspace_id, entity_id, status, build_trigger, created_by, n)
  SELECT workspace_id, entity_id, status, build_trigger, coalesce(created_by, ''), -count(*)
  FROM removed_builds GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (workspace_id, entity_id, status, build_trigger, created_by) DO UPDATE SET n = c.n + excluded.n;
  RETURN NULL;
END $$;
-- Only the status moves a build between counts: its workspace, app, trigger and creator never change.
CREATE FUNCTION build_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO build_counts AS c (workspace_id, entity_id, status, build_trigger, created_by, n)
  SELECT workspace_id, entity_id, status, build_trigger, created_by, sum(n) FROM (
    SELECT o.workspace_id, o.entity_id, o.status, o.build_trigger, coalesce(o.created_by, '') AS created_by, -1 AS n
    FROM old_builds o JOIN new_builds u ON u.id = o.id WHERE u.status <> o.status
    UNION ALL
    SELECT u.workspace_id, u.entity_id, u.status, u.build_trigger, coalesce(u.created_by, ''), 1
    FROM old_builds o JOIN new_builds u ON u.id = o.id WHERE u.status <> o.status
  ) moved GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (workspace_id, entity_id, status, build_trigger, created_by) DO UPDATE SET n = c.n + excluded.n;
  RETURN NULL;
END $$;
CREATE TRIGGER build_counts_insert AFTER INSERT ON builds REFERENCING NEW TABLE AS added_builds
  FOR EACH STATEMENT EXECUTE FUNCTION build_counts_inserted();
CREATE TRIGGER build_counts_delete AFTER DELETE ON builds REFERENCING OLD TABLE AS removed_builds
  FOR EACH STATEMENT EXECUTE FUNCTION build_counts_deleted();
CREATE TRIGGER build_counts_update AFTER UPDATE ON builds
  REFERENCING OLD TABLE AS old_builds NEW TABLE AS new_builds
  FOR EACH STATEMENT EXECUTE FUNCTION build_counts_updated()
`

// Builds listed in the order of a field other than their creation (DESIGN.md §4): an index per field that
// lists are sorted on in practice, so a page reads its rows in order instead of sorting every build. A
// nullable field has two partial indexes, its values by (field, id) and its nulls by id, that together cost
// a write what one index does; the compiled page asks each part in a plain order (Sql.ts), which serves
// all four directions and nulls orders. The other fields' indexes came later (`SqlRows.moreBuildSortIndexes`).
const sortIndexes = `
CREATE INDEX builds_by_sequence_number ON builds (sequence_number, id);
CREATE INDEX builds_by_updated_at ON builds (updated_at, id);
CREATE INDEX builds_by_started_at ON builds (started_at, id) WHERE started_at IS NOT NULL;
CREATE INDEX builds_not_started ON builds (id) WHERE started_at IS NULL;
CREATE INDEX builds_by_completed_at ON builds (completed_at, id) WHERE completed_at IS NOT NULL;
CREATE INDEX builds_not_completed ON builds (id) WHERE completed_at IS NULL;
`

// The count functions resolve `build_counts` by the search_path of whoever writes to `builds`: Kiln's own
// connections name the schema, but an operator's DELETE from psql, or another tool's connection, would fail
// (or count into another schema's table). Each now searches the schema it was created in (the migrating
// connection's), then pg_temp, whoever calls it; a schema renamed later needs them altered to match.
const pinSearchPath = (functions: ReadonlyArray<string>) => `
DO $$
DECLARE
  f TEXT;
BEGIN
  FOREACH f IN ARRAY ARRAY[${functions.map((name) => `'${name}'`).join(", ")}] LOOP
    EXECUTE format('ALTER FUNCTION %I() SET search_path = %I, pg_temp', f, current_schema());
  END LOOP;
END $$
`

const pinnedCountFunctions = pinSearchPath([
  "build_counts_inserted",
  "build_counts_deleted",
  "build_counts_updated"
])

// The lists the shorthand filters ask for (`status`, `trigger`, `created_by`; `workspace_id` and `app_id`
// have theirs), in their default order, newest first, read from an index that has both, whatever share of
// the builds matches: with only the field's sort index, a page of failed builds sorted all 150,000 of them.
// Their totals, when they name no creator, sum build_totals: build_counts without the creator, so a
// workspace's total sums a row per app, status and trigger (180 at ten apps) rather than one per creator too
// (7,650 at fifty creators took 2.5 ms of a 5 ms page). Kept as build_counts is, by triggers of its own,
// which fire after build_counts' (by name), so every statement locks the counts before the totals, each in
// key order. A total by creator finds its rows by the creator's index (only `n` changes in a count: its
// updates stay HOT).
const totalsOf = (rows: string, sign: string) =>
  `INSERT INTO build_totals AS t (workspace_id, entity_id, status, build_trigger, n)
  SELECT workspace_id, entity_id, status, build_trigger, ${sign}count(*) FROM ${rows}
  GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
  ON CONFLICT (workspace_id, entity_id, status, build_trigger) DO UPDATE SET n = t.n + excluded.n`

const shorthandLists = `
CREATE TABLE build_totals (
  workspace_id TEXT COLLATE "C" NOT NULL,
  entity_id TEXT COLLATE "C" NOT NULL,
  status TEXT COLLATE "C" NOT NULL,
  build_trigger TEXT COLLATE "C" NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (workspace_id, entity_id, status, build_trigger)
);
INSERT INTO build_totals (workspace_id, entity_id, status, build_trigger, n)
  SELECT workspace_id, entity_id, status, build_trigger, sum(n) FROM build_counts GROUP BY 1, 2, 3, 4;
CREATE INDEX build_counts_by_creator ON build_counts (created_by, workspace_id);
CREATE INDEX builds_list_by_status ON builds (status, created_at, id);
CREATE INDEX builds_list_by_trigger ON builds (build_trigger, created_at, id);
CREATE INDEX builds_list_by_creator ON builds (created_by, created_at, id) WHERE created_by IS NOT NULL;
CREATE FUNCTION build_totals_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  ${totalsOf("added_builds", "")};
  RETURN NULL;
END $$;
CREATE FUNCTION build_totals_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  ${totalsOf("removed_builds", "-")};
  RETURN NULL;
END $$;
CREATE FUNCTION build_totals_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO build_totals AS t (workspace_id, entity_id, status, build_trigger, n)
  SELECT workspace_id, entity_id, status, build_trigger, sum(n) FROM (
    SELECT o.workspace_id, o.entity_id, o.status, o.build_trigger, -1 AS n
    FROM old_builds o JOIN new_builds u ON u.id = o.id WHERE u.status <> o.status
    UNION ALL
    SELECT u.workspace_id, u.entity_id, u.status, u.build_trigger, 1
    FROM old_builds o JOIN new_builds u ON u.id = o.id WHERE u.status <> o.status
  ) moved GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4
  ON CONFLICT (workspace_id, entity_id, status, build_trigger) DO UPDATE SET n = t.n + excluded.n;
  RETURN NULL;
END $$;
CREATE TRIGGER build_totals_insert AFTER INSERT ON builds REFERENCING NEW TABLE AS added_builds
  FOR EACH STATEMENT EXECUTE FUNCTION build_totals_inserted();
CREATE TRIGGER build_totals_delete AFTER DELETE ON builds REFERENCING OLD TABLE AS removed_builds
  FOR EACH STATEMENT EXECUTE FUNCTION build_totals_deleted();
CREATE TRIGGER build_totals_update AFTER UPDATE ON builds
  REFERENCING OLD TABLE AS old_builds NEW TABLE AS new_builds
  FOR EACH STATEMENT EXECUTE FUNCTION build_totals_updated();
${pinSearchPath(["build_totals_inserted", "build_totals_deleted", "build_totals_updated"])}`

export const migrations: ReadonlyArray<Migration> = [
  { version: 1, name: "create_schema", sql: createSchema },
  { version: 2, name: "triggers", sql: triggers },
  { version: 3, name: "archives", sql: archives },
  { version: 4, name: "events_and_webhooks", sql: eventsAndWebhooks },
  { version: 5, name: "retention", sql: retention },
  { version: 6, name: "build_counts", sql: buildCounts },
  { version: 7, name: "sort_indexes", sql: sortIndexes },
  { version: 8, name: "pinned_count_functions", sql: pinnedCountFunctions },
  { version: 9, name: "more_sort_indexes", sql: SqlRows.moreBuildSortIndexes },
  { version: 10, name: "shorthand_lists", sql: shorthandLists },
  { version: 11, name: "settled_sort_indexes", sql: SqlRows.settledBuildSortIndexes }
]

/**
 * Brings the schema up to date and answers the versions this call applied: one transaction, two round
 * trips. Safe when several processes start at once: each first takes a transaction-scoped advisory lock
 * named after the schema, so the others wait, then find the migrations recorded and apply nothing. A
 * schema already migrated past what this version knows is refused as `Corrupt`, rather than read with
 * the wrong columns.
 */
export const migrate = (
  db: Database,
  schema: string,
  known: ReadonlyArray<Migration> = migrations
): Effect.Effect<ReadonlyArray<number>, StorageError.StorageError> =>
  db.transaction((run) =>
    Effect.gen(function* () {
      // Creating the schema waits for the lock too: two concurrent CREATE SCHEMA IF NOT EXISTS can
      // still collide on the catalog's unique index.
      const recorded = yield* run<{ readonly version: number; readonly name: string }>({
        text: `SELECT pg_advisory_xact_lock(${lockKey(schema, "migrate")});
CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)};
CREATE TABLE IF NOT EXISTS kiln_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at BIGINT NOT NULL
);
SELECT version, name FROM kiln_migrations ORDER BY version`
      })
      const byVersion = new Map(known.map((migration) => [migration.version, migration.name]))
      const foreign = recorded.find((row) => byVersion.get(row.version) !== row.name)
      if (foreign !== undefined) {
        return yield* new StorageError.StorageError({
          reason: "Corrupt",
          message: `PostgreSQL storage: the schema has migration ${foreign.version} (${foreign.name}), which this version of Kiln does not know`
        })
      }
      const applied = new Set(recorded.map((row) => row.version))
      const missing = known.filter((migration) => !applied.has(migration.version))
      if (missing.length > 0) {
        yield* run({
          text: missing
            .map(
              (migration) =>
                `${migration.sql};\nINSERT INTO kiln_migrations (version, name, applied_at) VALUES (${migration.version}, '${migration.name}', ${databaseNow})`
            )
            .join(";\n")
        })
      }
      return missing.map((migration) => migration.version)
    })
  )
