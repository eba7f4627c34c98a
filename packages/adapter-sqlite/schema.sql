-- Generated from the migrations by test/sqlite.test.ts; do not edit.

CREATE TABLE kiln_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at INTEGER NOT NULL
) STRICT;

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
, source_type TEXT NOT NULL DEFAULT 'git') STRICT;

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
, all_workspaces INTEGER NOT NULL DEFAULT 0) STRICT;

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

CREATE INDEX builds_queued ON builds (created_at, id) WHERE phase = 'queued';

CREATE INDEX builds_active_by_workspace ON builds (workspace_id)
  WHERE phase IN ('initializing', 'running');

CREATE INDEX builds_active_by_app ON builds (entity_id) WHERE phase IN ('initializing', 'running');

CREATE INDEX builds_active_by_lease ON builds (lease_expires_at)
  WHERE phase IN ('initializing', 'running');

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

CREATE TABLE log_lines (
  build_id TEXT NOT NULL REFERENCES builds (id),
  seq INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  stream TEXT NOT NULL,
  step TEXT,
  text TEXT NOT NULL,
  PRIMARY KEY (build_id, seq)
) STRICT, WITHOUT ROWID;

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
, expired_at INTEGER) STRICT;

CREATE INDEX app_versions_by_app ON app_versions (app_id, created_at, id);

CREATE TABLE token_workspaces (
  token_id TEXT NOT NULL REFERENCES api_tokens (id),
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  PRIMARY KEY (token_id, workspace_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX builds_by_app ON builds (entity_id, created_at, id);

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

CREATE INDEX triggers_live ON triggers (workspace_id, created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE events (
  position INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  type TEXT NOT NULL,
  subject TEXT NOT NULL,
  timestamp INTEGER NOT NULL,
  data TEXT NOT NULL
) STRICT;

CREATE TABLE sqlite_sequence(name,seq);

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

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, position)
  WHERE status = 'pending';

CREATE INDEX webhook_deliveries_pending_subject ON webhook_deliveries (webhook_id, subject, position)
  WHERE status = 'pending';

CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, position);

CREATE TABLE webhook_fanout (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  position INTEGER NOT NULL
) STRICT;

CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE build_counts (
  workspace_id TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  status TEXT NOT NULL,
  build_trigger TEXT NOT NULL,
  created_by TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, entity_id, status, build_trigger, created_by)
) STRICT, WITHOUT ROWID;

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

CREATE TRIGGER build_counts_update AFTER UPDATE OF status ON builds WHEN old.status <> new.status BEGIN
  UPDATE build_counts SET n = n - 1
  WHERE workspace_id = old.workspace_id AND entity_id = old.entity_id AND status = old.status
    AND build_trigger = old.build_trigger AND created_by = coalesce(old.created_by, '');
  INSERT INTO build_counts (workspace_id, entity_id, status, build_trigger, created_by, n)
  VALUES (new.workspace_id, new.entity_id, new.status, new.build_trigger, coalesce(new.created_by, ''), 1)
  ON CONFLICT (workspace_id, entity_id, status, build_trigger, created_by) DO UPDATE SET n = n + 1;
END;

CREATE INDEX builds_by_entity_id ON "builds" ("entity_id", "id");

CREATE INDEX builds_by_app_version_id ON "builds" ("app_version_id", "id");

CREATE TABLE build_totals (
  workspace_id TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  status TEXT NOT NULL,
  build_trigger TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, entity_id, status, build_trigger)
) STRICT, WITHOUT ROWID;

CREATE INDEX build_counts_by_creator ON build_counts (created_by, workspace_id);

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

CREATE INDEX builds_by_sequence_number ON "builds" ("sequence_number", "id") WHERE "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_updated_at ON "builds" ("updated_at", "id") WHERE "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_started_at ON "builds" ("started_at", "id") WHERE "started_at" IS NOT NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_started_at_nulls ON "builds" ("id") WHERE "started_at" IS NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_completed_at ON "builds" ("completed_at", "id") WHERE "completed_at" IS NOT NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_completed_at_nulls ON "builds" ("id") WHERE "completed_at" IS NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_workspace_id ON "builds" ("workspace_id", "id") WHERE "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_status ON "builds" ("status", "id") WHERE "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_phase ON "builds" ("phase", "id") WHERE "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_outcome ON "builds" ("outcome", "id") WHERE "outcome" IS NOT NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_outcome_nulls ON "builds" ("id") WHERE "outcome" IS NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_build_trigger ON "builds" ("build_trigger", "id") WHERE "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_source_event_id ON "builds" ("source_event_id", "id") WHERE "source_event_id" IS NOT NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_source_event_id_nulls ON "builds" ("id") WHERE "source_event_id" IS NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_error ON "builds" ("error", "id") WHERE "error" IS NOT NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_error_nulls ON "builds" ("id") WHERE "error" IS NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_created_by ON "builds" ("created_by", "id") WHERE "created_by" IS NOT NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_created_by_nulls ON "builds" ("id") WHERE "created_by" IS NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_commit_sha ON "builds" ("commit_sha", "id") WHERE "commit_sha" IS NOT NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_commit_sha_nulls ON "builds" ("id") WHERE "commit_sha" IS NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_image_tag ON "builds" ("image_tag", "id") WHERE "image_tag" IS NOT NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_image_tag_nulls ON "builds" ("id") WHERE "image_tag" IS NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_cancel_reason ON "builds" ("cancel_reason", "id") WHERE "cancel_reason" IS NOT NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_cancel_reason_nulls ON "builds" ("id") WHERE "cancel_reason" IS NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_owner ON "builds" ("owner", "id") WHERE "owner" IS NOT NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_owner_nulls ON "builds" ("id") WHERE "owner" IS NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_attempt ON "builds" ("attempt", "id") WHERE "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_running_at ON "builds" ("running_at", "id") WHERE "running_at" IS NOT NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_running_at_nulls ON "builds" ("id") WHERE "running_at" IS NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_by_cancel_requested_at ON "builds" ("cancel_requested_at", "id") WHERE "cancel_requested_at" IS NOT NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_cancel_requested_at_nulls ON "builds" ("id") WHERE "cancel_requested_at" IS NULL AND "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_list ON "builds" ("created_at", "id") WHERE "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_list_by_workspace ON "builds" ("workspace_id", "created_at", "id") WHERE "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_list_by_status ON "builds" ("status", "created_at", "id") WHERE "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_list_by_trigger ON "builds" ("build_trigger", "created_at", "id") WHERE "phase" NOT IN ('initializing', 'running');

CREATE INDEX builds_list_by_creator ON "builds" ("created_by", "created_at", "id") WHERE "created_by" IS NOT NULL AND "phase" NOT IN ('initializing', 'running');
