/**
 * The schema, as numbered, append-only migrations: a released migration never changes, a change is a
 * new one. Each is recorded in `kiln_migrations` by the transaction that applies it.
 *
 * Conventions: timestamps are INTEGER epoch milliseconds; JSON values are TEXT; tables are STRICT so a
 * value of the wrong type is refused instead of silently stored.
 */
import { StorageError } from "@kiln/core"
import { SqlRows } from "@kiln/core/adapter"
import { Effect, Result } from "effect"
import { attempt, type Connection } from "./connection.ts"

export interface Migration {
  readonly version: number
  readonly name: string
  readonly sql: string
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS kiln_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at INTEGER NOT NULL
) STRICT`

// Kept flush left: SQLite stores each statement's text as written, and `.schema` shows it so.
const createSchema = `
CREATE TABLE workspaces (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX workspaces_list ON workspaces (created_at, id);

CREATE TABLE apps (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  handle TEXT NOT NULL,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  build_settings TEXT NOT NULL,
  -- The last sequence number given to a build of this app. Incrementing it in the transaction that
  -- inserts the build keeps the numbers gapless, across processes too.
  build_sequence INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (workspace_id, handle)
) STRICT;
CREATE INDEX apps_list_by_workspace ON apps (workspace_id, created_at, id);
CREATE INDEX apps_list ON apps (created_at, id);

CREATE TABLE app_versions (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  app_id TEXT NOT NULL REFERENCES apps (id),
  status TEXT NOT NULL,
  source TEXT NOT NULL,
  commit_sha TEXT,
  error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX app_versions_list_by_workspace ON app_versions (workspace_id, created_at, id);
CREATE INDEX app_versions_list ON app_versions (created_at, id);

CREATE TABLE source_events (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  delivery_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  repository TEXT NOT NULL,
  branch TEXT,
  commit_sha TEXT,
  changed_paths TEXT NOT NULL,
  author TEXT,
  message TEXT,
  received_at INTEGER NOT NULL,
  -- A redelivered push is the same event.
  UNIQUE (workspace_id, delivery_id)
) STRICT;

CREATE TABLE api_tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  -- JSON: the string "*" or an array of workspace ids.
  workspace_ids TEXT NOT NULL,
  role TEXT NOT NULL,
  -- Only the SHA-256 of the secret is stored, and it is never read back out.
  token_hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER
) STRICT;
CREATE INDEX api_tokens_list ON api_tokens (created_at, id);

CREATE TABLE builds (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  entity_id TEXT NOT NULL REFERENCES apps (id),
  app_version_id TEXT NOT NULL REFERENCES app_versions (id),
  sequence_number INTEGER NOT NULL,
  phase TEXT NOT NULL,
  outcome TEXT,
  -- Derived from phase and outcome, stored so that lists can filter on the canonical status.
  status TEXT NOT NULL,
  build_trigger TEXT NOT NULL,
  source_event_id TEXT REFERENCES source_events (id),
  idempotency_key TEXT,
  error TEXT,
  metadata TEXT NOT NULL,
  created_by TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  started_at INTEGER,
  running_at INTEGER,
  completed_at INTEGER,
  cancel_requested_at INTEGER,
  cancel_reason TEXT,
  skip_reason TEXT,
  image_tag TEXT,
  image_digest TEXT,
  commit_sha TEXT,
  trigger_metadata TEXT,
  owner TEXT,
  attempt INTEGER NOT NULL,
  lease_expires_at INTEGER,
  UNIQUE (entity_id, sequence_number),
  -- NULLs are distinct in SQLite, so these constrain only builds that carry an event or a key.
  UNIQUE (entity_id, source_event_id),
  UNIQUE (workspace_id, idempotency_key)
) STRICT;
-- The claim scans queued builds oldest first. Partial, so it holds only the queue, not the history;
-- a query uses it only when its WHERE repeats phase = 'queued' as a literal.
CREATE INDEX builds_queued ON builds (created_at, id) WHERE phase = 'queued';
-- Active builds (claimed, not stopped): counted per workspace and per app for the claim caps, and
-- scanned by lease expiry for the reaper. Partial for the same reason as the queue.
CREATE INDEX builds_active_by_workspace ON builds (workspace_id)
  WHERE phase IN ('initializing', 'running');
CREATE INDEX builds_active_by_app ON builds (entity_id) WHERE phase IN ('initializing', 'running');
CREATE INDEX builds_active_by_lease ON builds (lease_expires_at)
  WHERE phase IN ('initializing', 'running');
-- Keyset pages, newest first: within a caller's workspaces, and across all of them.
CREATE INDEX builds_list_by_workspace ON builds (workspace_id, created_at, id);
CREATE INDEX builds_list ON builds (created_at, id);

CREATE TABLE build_steps (
  build_id TEXT NOT NULL REFERENCES builds (id),
  idx INTEGER NOT NULL,
  name TEXT NOT NULL,
  status TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  completed_at INTEGER,
  exit_code INTEGER,
  error TEXT,
  PRIMARY KEY (build_id, idx)
) STRICT, WITHOUT ROWID;

-- Clustered on (build_id, seq): a page of a log is one contiguous range of the table.
CREATE TABLE log_lines (
  build_id TEXT NOT NULL REFERENCES builds (id),
  seq INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  stream TEXT NOT NULL,
  step TEXT,
  text TEXT NOT NULL,
  PRIMARY KEY (build_id, seq)
) STRICT, WITHOUT ROWID;

-- The log budget's bookkeeping (LogBudget.Stats), one row per build that has logged.
CREATE TABLE log_stats (
  build_id TEXT PRIMARY KEY REFERENCES builds (id),
  last_seq INTEGER NOT NULL,
  head_bytes INTEGER NOT NULL,
  head_last_seq INTEGER,
  tail_bytes INTEGER NOT NULL,
  dropped_lines INTEGER NOT NULL,
  dropped_bytes INTEGER NOT NULL,
  dropped_through_seq INTEGER NOT NULL,
  truncated_at INTEGER
) STRICT;
`

// Filters and scope checks read plain columns (DESIGN.md §4): a version's source type, and a token's grants
// as rows, so "every workspace the token grants is within the caller's scope" is one NOT EXISTS. The JSON
// columns stay the record the rows are read from; these are written with them, in the same transaction.
const queryColumns = `
ALTER TABLE app_versions ADD COLUMN source_type TEXT NOT NULL DEFAULT 'git';
UPDATE app_versions SET source_type = json_extract(source, '$.type');
CREATE INDEX app_versions_by_app ON app_versions (app_id, created_at, id);

ALTER TABLE api_tokens ADD COLUMN all_workspaces INTEGER NOT NULL DEFAULT 0;
UPDATE api_tokens SET all_workspaces = (workspace_ids = '"*"');
CREATE TABLE token_workspaces (
  token_id TEXT NOT NULL REFERENCES api_tokens (id),
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  PRIMARY KEY (token_id, workspace_id)
) STRICT, WITHOUT ROWID;
INSERT INTO token_workspaces (token_id, workspace_id)
  SELECT t.id, j.value FROM api_tokens t, json_each(t.workspace_ids) j WHERE t.all_workspaces = 0;

CREATE INDEX builds_by_app ON builds (entity_id, created_at, id);
`

const triggers = `
CREATE TABLE triggers (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  app_id TEXT NOT NULL REFERENCES apps (id),
  name TEXT NOT NULL,
  repository TEXT,
  branch_includes TEXT NOT NULL,
  branch_excludes TEXT NOT NULL,
  path_includes TEXT NOT NULL,
  path_excludes TEXT NOT NULL,
  build_command TEXT,
  deploy_command TEXT,
  root_directory TEXT,
  caching_enabled INTEGER NOT NULL,
  environment TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deleted_at INTEGER
) STRICT;
-- A push reads the live triggers of its workspace.
CREATE INDEX triggers_live ON triggers (workspace_id, created_at, id) WHERE deleted_at IS NULL;
`

// The outbox (DESIGN.md §11). AUTOINCREMENT: a position is never given twice, so a cursor handed out once
// keeps its place; positions follow commit order because SQLite has one writer at a time.
const eventsAndWebhooks = `
CREATE TABLE events (
  position INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  type TEXT NOT NULL,
  subject TEXT NOT NULL,
  timestamp INTEGER NOT NULL,
  data TEXT NOT NULL
) STRICT;
-- The feed of one workspace, in order: a token's read walks each of its workspaces on this.
CREATE INDEX events_by_workspace ON events (workspace_id, position);

CREATE TABLE webhooks (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  url TEXT NOT NULL,
  -- JSON: an array of event types, every type when empty.
  types TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  disabled_reason TEXT,
  -- The signing keys themselves: a sender needs them to sign, so they cannot be hashed.
  secret TEXT NOT NULL,
  previous_secret TEXT,
  previous_secret_expires_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX webhooks_by_workspace ON webhooks (workspace_id, created_at, id);
CREATE INDEX webhooks_list ON webhooks (created_at, id);

-- One row per event and endpoint (and per ping). position orders one endpoint's deliveries of a subject.
CREATE TABLE webhook_deliveries (
  position INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  webhook_id TEXT NOT NULL REFERENCES webhooks (id),
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  event_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  subject TEXT NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  last_attempt_at INTEGER,
  last_status_code INTEGER,
  last_error TEXT,
  last_duration_ms INTEGER,
  next_attempt_at INTEGER,
  created_at INTEGER NOT NULL,
  delivered_at INTEGER,
  lease_owner TEXT,
  lease_claim INTEGER NOT NULL,
  lease_expires_at INTEGER
) STRICT;
-- The claim scans pending deliveries by when they are due; partial, so it holds only what is pending.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, position)
  WHERE status = 'pending';
-- The claim's order check: is an earlier delivery of this subject to this endpoint still pending?
CREATE INDEX webhook_deliveries_pending_subject ON webhook_deliveries (webhook_id, subject, position)
  WHERE status = 'pending';
-- An endpoint's delivery log, newest first.
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, position);

-- How far fan-out has read the feed: one row, locked by the transaction that moves it.
CREATE TABLE webhook_fanout (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  position INTEGER NOT NULL
) STRICT;
INSERT INTO webhook_fanout (id, position) VALUES (1, 0);
`

// Retention (DESIGN.md §12): when a log expired, which builds a version still has, and the leases that let
// one process at a time run a pass.
const retention = `
ALTER TABLE log_stats ADD COLUMN expired_at INTEGER;
CREATE INDEX builds_by_version ON builds (app_version_id);
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;
`

// Exact list totals (DESIGN.md §4): builds counted per workspace, app, status, trigger and creator, kept by
// triggers in the transaction of every insert, status change and delete, so a total over equalities on
// those fields sums a few rows instead of counting the builds. A build without a creator counts under ''.
const buildCounts = `
CREATE TABLE build_counts (
  workspace_id TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  status TEXT NOT NULL,
  build_trigger TEXT NOT NULL,
  created_by TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, entity_id, status, build_trigger, created_by)
) STRICT, WITHOUT ROWID;
INSERT INTO build_counts (workspace_id, entity_id, status, build_trigger, created_by, n)
  SELECT workspace_id, entity_id, status, build_trigger, coalesce(created_by, ''), count(*)
  FROM builds GROUP BY 1, 2, 3, 4, 5;
CREATE TRIGGER build_counts_insert AFTER INSERT ON builds BEGIN
  INSERT INTO build_counts (workspace_id, entity_id, status, build_trigger, created_by, n)
  VALUES (new.workspace_id, new.entity_id, new.status, new.build_trigger, coalesce(new.created_by, ''), 1)
  ON CONFLICT (workspace_id, entity_id, status, build_trigger, created_by) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER build_counts_delete AFTER DELETE ON builds BEGIN
  UPDATE build_counts SET n = n - 1
  WHERE workspace_id = old.workspace_id AND entity_id = old.entity_id AND status = old.status
    AND build_trigger = old.build_trigger AND created_by = coalesce(old.created_by, '');
END;
-- Only the status moves a build between counts: its workspace, app, trigger and creator never change.
CREATE TRIGGER build_counts_update AFTER UPDATE OF status ON builds WHEN old.status <> new.status BEGIN
  UPDATE build_counts SET n = n - 1
  WHERE workspace_id = old.workspace_id AND entity_id = old.entity_id AND status = old.status
    AND build_trigger = old.build_trigger AND created_by = coalesce(old.created_by, '');
  INSERT INTO build_counts (workspace_id, entity_id, status, build_trigger, created_by, n)
  VALUES (new.workspace_id, new.entity_id, new.status, new.build_trigger, coalesce(new.created_by, ''), 1)
  ON CONFLICT (workspace_id, entity_id, status, build_trigger, created_by) DO UPDATE SET n = n + 1;
END;
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

// The lists the shorthand filters ask for (`status`, `trigger`, `created_by`; `workspace_id` and `app_id`
// have theirs), in their default order, read from an index that has both, whatever share of the builds
// matches: with statistics, the planner took the field's sort index and sorted every failed build. Their
// totals, when they name no creator, sum build_totals: build_counts without the creator, a row per
// workspace, app, status and trigger (the field table's first counts, `Fields.builds.counts`); a total by
// creator finds its rows in build_counts by the creator's index.
const shorthandLists = `
CREATE TABLE build_totals (
  workspace_id TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  status TEXT NOT NULL,
  build_trigger TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, entity_id, status, build_trigger)
) STRICT, WITHOUT ROWID;
INSERT INTO build_totals (workspace_id, entity_id, status, build_trigger, n)
  SELECT workspace_id, entity_id, status, build_trigger, sum(n) FROM build_counts GROUP BY 1, 2, 3, 4;
CREATE INDEX build_counts_by_creator ON build_counts (created_by, workspace_id);
CREATE INDEX builds_list_by_status ON builds (status, created_at, id);
CREATE INDEX builds_list_by_trigger ON builds (build_trigger, created_at, id);
CREATE INDEX builds_list_by_creator ON builds (created_by, created_at, id) WHERE created_by IS NOT NULL;
CREATE TRIGGER build_totals_insert AFTER INSERT ON builds BEGIN
  INSERT INTO build_totals (workspace_id, entity_id, status, build_trigger, n)
  VALUES (new.workspace_id, new.entity_id, new.status, new.build_trigger, 1)
  ON CONFLICT (workspace_id, entity_id, status, build_trigger) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER build_totals_delete AFTER DELETE ON builds BEGIN
  UPDATE build_totals SET n = n - 1
  WHERE workspace_id = old.workspace_id AND entity_id = old.entity_id AND status = old.status
    AND build_trigger = old.build_trigger;
END;
CREATE TRIGGER build_totals_update AFTER UPDATE OF status ON builds WHEN old.status <> new.status BEGIN
  UPDATE build_totals SET n = n - 1
  WHERE workspace_id = old.workspace_id AND entity_id = old.entity_id AND status = old.status
    AND build_trigger = old.build_trigger;
  INSERT INTO build_totals (workspace_id, entity_id, status, build_trigger, n)
  VALUES (new.workspace_id, new.entity_id, new.status, new.build_trigger, 1)
  ON CONFLICT (workspace_id, entity_id, status, build_trigger) DO UPDATE SET n = n + 1;
END;
`

export const migrations: ReadonlyArray<Migration> = [
  { version: 1, name: "create_schema", sql: createSchema },
  { version: 2, name: "query_columns", sql: queryColumns },
  { version: 3, name: "triggers", sql: triggers },
  { version: 4, name: "events_and_webhooks", sql: eventsAndWebhooks },
  { version: 5, name: "retention", sql: retention },
  { version: 6, name: "build_counts", sql: buildCounts },
  { version: 7, name: "sort_indexes", sql: sortIndexes },
  { version: 8, name: "more_sort_indexes", sql: SqlRows.moreBuildSortIndexes },
  { version: 9, name: "shorthand_lists", sql: shorthandLists },
  { version: 10, name: "settled_sort_indexes", sql: SqlRows.settledBuildSortIndexes }
]

/**
 * Brings the schema up to date and answers the versions this call applied. Safe to run from several
 * processes at once: see `applyOne`. A database already migrated past what this version knows is refused
 * as `Corrupt`, rather than read with the wrong schema.
 */
export const migrate = (
  db: Connection,
  appliedAt: number,
  known: ReadonlyArray<Migration> = migrations
): Effect.Effect<ReadonlyArray<number>, StorageError.StorageError> =>
  Effect.flatMap(
    attempt(() => {
      db.exec(createMigrationsTable)
      const recorded = db
        .prepare<[], { version: number; name: string }>("SELECT version, name FROM kiln_migrations")
        .all()
      const byVersion = new Map(known.map((migration) => [migration.version, migration.name]))
      const foreign = recorded.find((row) => byVersion.get(row.version) !== row.name)
      if (foreign !== undefined) {
        return Result.fail(
          new StorageError.StorageError({
            reason: "Corrupt",
            message: `SQLite storage: the database has migration ${foreign.version} (${foreign.name}), which this version of Kiln does not know`
          })
        )
      }
      const record = db.prepare<[number, string, number]>(
        "INSERT OR IGNORE INTO kiln_migrations (version, name, applied_at) VALUES (?, ?, ?)"
      )
      // The migration's row is inserted first, under the write lock that BEGIN IMMEDIATE takes: of two
      // processes migrating at once, the second waits for the lock, finds the row and skips.
      const applyOne = db.transaction((migration: Migration): boolean => {
        if (record.run(migration.version, migration.name, appliedAt).changes === 0) return false
        db.exec(migration.sql)
        return true
      })
      const applied: Array<number> = []
      for (const migration of known) if (applyOne.immediate(migration)) applied.push(migration.version)
      // Indexes a migration adds to an analyzed database have no statistics, and against the others' the
      // planner judges them far more selective than they are (a page of builds sorted one million rows
      // with a new index rather than reading 101 with the old one). Such a database is analyzed again,
      // on a sample of each index (about half a second at a million builds); one never analyzed keeps
      // the planner's defaults, which prefer the index that serves a page's order.
      if (applied.length > 0 && db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").get()) {
        db.exec("PRAGMA analysis_limit = 400; ANALYZE")
      }
      return Result.succeed(applied)
    }),
    (result) => Effect.fromResult(result)
  )
