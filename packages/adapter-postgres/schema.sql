-- Generated from the migrations by test/migrations.test.ts; do not edit.
-- Read from the catalog, so it shows what PostgreSQL made of them (types, constraint names).

CREATE TABLE api_tokens (
  id text COLLATE "C" NOT NULL,
  name text COLLATE "C" NOT NULL,
  workspace_ids text COLLATE "C" NOT NULL,
  all_workspaces boolean NOT NULL,
  role text COLLATE "C" NOT NULL,
  token_hash text COLLATE "C" NOT NULL,
  created_at bigint NOT NULL,
  expires_at bigint,
  revoked_at bigint,
  CONSTRAINT api_tokens_pkey PRIMARY KEY (id),
  CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX api_tokens_list ON api_tokens USING btree (created_at, id);

CREATE TABLE app_versions (
  id text COLLATE "C" NOT NULL,
  workspace_id text COLLATE "C" NOT NULL,
  app_id text COLLATE "C" NOT NULL,
  status text COLLATE "C" NOT NULL,
  source text COLLATE "C" NOT NULL,
  source_type text COLLATE "C" NOT NULL,
  commit_sha text COLLATE "C",
  error text COLLATE "C",
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  CONSTRAINT app_versions_pkey PRIMARY KEY (id),
  CONSTRAINT app_versions_app_id_fkey FOREIGN KEY (app_id) REFERENCES apps(id),
  CONSTRAINT app_versions_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces(id)
);
CREATE INDEX app_versions_by_app ON app_versions USING btree (app_id, created_at, id);
CREATE INDEX app_versions_by_commit ON app_versions USING btree (commit_sha);
CREATE INDEX app_versions_list ON app_versions USING btree (created_at, id);
CREATE INDEX app_versions_list_by_workspace ON app_versions USING btree (workspace_id, created_at, id);

CREATE TABLE apps (
  id text COLLATE "C" NOT NULL,
  workspace_id text COLLATE "C" NOT NULL,
  handle text COLLATE "C" NOT NULL,
  name text COLLATE "C" NOT NULL,
  kind text COLLATE "C" NOT NULL,
  build_settings text COLLATE "C" NOT NULL,
  build_sequence bigint DEFAULT 0 NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  CONSTRAINT apps_pkey PRIMARY KEY (id),
  CONSTRAINT apps_workspace_id_handle_key UNIQUE (workspace_id, handle),
  CONSTRAINT apps_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces(id)
);
CREATE INDEX apps_list ON apps USING btree (created_at, id);
CREATE INDEX apps_list_by_workspace ON apps USING btree (workspace_id, created_at, id);

CREATE TABLE archive_blobs (
  sha256 text COLLATE "C" NOT NULL,
  blob_id uuid NOT NULL,
  size_bytes bigint NOT NULL,
  chunk_bytes integer NOT NULL,
  stored_at bigint NOT NULL,
  CONSTRAINT archive_blobs_pkey PRIMARY KEY (sha256),
  CONSTRAINT archive_blobs_blob_id_key UNIQUE (blob_id)
);

CREATE TABLE archive_chunks (
  blob_id uuid NOT NULL,
  idx integer NOT NULL,
  data bytea NOT NULL,
  CONSTRAINT archive_chunks_pkey PRIMARY KEY (blob_id, idx),
  CONSTRAINT archive_chunks_blob_id_fkey FOREIGN KEY (blob_id) REFERENCES archive_blobs(blob_id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
ALTER TABLE archive_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE build_counts (
  workspace_id text COLLATE "C" NOT NULL,
  entity_id text COLLATE "C" NOT NULL,
  status text COLLATE "C" NOT NULL,
  build_trigger text COLLATE "C" NOT NULL,
  created_by text COLLATE "C" NOT NULL,
  n bigint NOT NULL,
  CONSTRAINT build_counts_pkey PRIMARY KEY (workspace_id, entity_id, status, build_trigger, created_by)
);
CREATE INDEX build_counts_by_creator ON build_counts USING btree (created_by, workspace_id);

CREATE TABLE build_steps (
  build_id text COLLATE "C" NOT NULL,
  idx numeric NOT NULL,
  name text COLLATE "C" NOT NULL,
  status text COLLATE "C" NOT NULL,
  started_at bigint NOT NULL,
  completed_at bigint,
  exit_code numeric,
  error text COLLATE "C",
  CONSTRAINT build_steps_pkey PRIMARY KEY (build_id, idx),
  CONSTRAINT build_steps_build_id_fkey FOREIGN KEY (build_id) REFERENCES builds(id)
);

CREATE TABLE build_totals (
  workspace_id text COLLATE "C" NOT NULL,
  entity_id text COLLATE "C" NOT NULL,
  status text COLLATE "C" NOT NULL,
  build_trigger text COLLATE "C" NOT NULL,
  n bigint NOT NULL,
  CONSTRAINT build_totals_pkey PRIMARY KEY (workspace_id, entity_id, status, build_trigger)
);

CREATE TABLE builds (
  id text COLLATE "C" NOT NULL,
  workspace_id text COLLATE "C" NOT NULL,
  entity_id text COLLATE "C" NOT NULL,
  app_version_id text COLLATE "C" NOT NULL,
  sequence_number numeric NOT NULL,
  phase text COLLATE "C" NOT NULL,
  outcome text COLLATE "C",
  status text COLLATE "C" NOT NULL,
  build_trigger text COLLATE "C" NOT NULL,
  source_event_id text COLLATE "C",
  idempotency_key text COLLATE "C",
  error text COLLATE "C",
  metadata text COLLATE "C" NOT NULL,
  created_by text COLLATE "C",
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  started_at bigint,
  running_at bigint,
  completed_at bigint,
  cancel_requested_at bigint,
  cancel_reason text COLLATE "C",
  skip_reason text COLLATE "C",
  image_tag text COLLATE "C",
  image_digest text COLLATE "C",
  commit_sha text COLLATE "C",
  trigger_metadata text COLLATE "C",
  owner text COLLATE "C",
  attempt numeric NOT NULL,
  lease_expires_at bigint,
  CONSTRAINT builds_pkey PRIMARY KEY (id),
  CONSTRAINT builds_entity_id_sequence_number_key UNIQUE (entity_id, sequence_number),
  CONSTRAINT builds_entity_id_source_event_id_key UNIQUE (entity_id, source_event_id),
  CONSTRAINT builds_workspace_id_idempotency_key_key UNIQUE (workspace_id, idempotency_key),
  CONSTRAINT builds_app_version_id_fkey FOREIGN KEY (app_version_id) REFERENCES app_versions(id),
  CONSTRAINT builds_entity_id_fkey FOREIGN KEY (entity_id) REFERENCES apps(id),
  CONSTRAINT builds_source_event_id_fkey FOREIGN KEY (source_event_id) REFERENCES source_events(id),
  CONSTRAINT builds_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces(id)
);
CREATE INDEX builds_active ON builds USING btree (workspace_id, entity_id) WHERE (phase = ANY (ARRAY['initializing'::text, 'running'::text]));
CREATE INDEX builds_active_by_lease ON builds USING btree (lease_expires_at) WHERE (phase = ANY (ARRAY['initializing'::text, 'running'::text]));
CREATE INDEX builds_by_app ON builds USING btree (entity_id, created_at, id);
CREATE INDEX builds_by_app_version_id ON builds USING btree (app_version_id, id);
CREATE INDEX builds_by_attempt ON builds USING btree (attempt, id) WHERE (phase <> ALL (ARRAY['initializing'::text, 'running'::text]));
CREATE INDEX builds_by_build_trigger ON builds USING btree (build_trigger, id) WHERE (phase <> ALL (ARRAY['initializing'::text, 'running'::text]));
CREATE INDEX builds_by_cancel_reason ON builds USING btree (cancel_reason, id) WHERE ((cancel_reason IS NOT NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_by_cancel_requested_at ON builds USING btree (cancel_requested_at, id) WHERE ((cancel_requested_at IS NOT NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_by_commit_sha ON builds USING btree (commit_sha, id) WHERE ((commit_sha IS NOT NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_by_completed_at ON builds USING btree (completed_at, id) WHERE ((completed_at IS NOT NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_by_created_by ON builds USING btree (created_by, id) WHERE ((created_by IS NOT NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_by_entity_id ON builds USING btree (entity_id, id);
CREATE INDEX builds_by_error ON builds USING btree (error, id) WHERE ((error IS NOT NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_by_image_tag ON builds USING btree (image_tag, id) WHERE ((image_tag IS NOT NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_by_outcome ON builds USING btree (outcome, id) WHERE ((outcome IS NOT NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_by_owner ON builds USING btree (owner, id) WHERE ((owner IS NOT NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_by_phase ON builds USING btree (phase, id) WHERE (phase <> ALL (ARRAY['initializing'::text, 'running'::text]));
CREATE INDEX builds_by_running_at ON builds USING btree (running_at, id) WHERE ((running_at IS NOT NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_by_sequence_number ON builds USING btree (sequence_number, id) WHERE (phase <> ALL (ARRAY['initializing'::text, 'running'::text]));
CREATE INDEX builds_by_source_event_id ON builds USING btree (source_event_id, id) WHERE ((source_event_id IS NOT NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_by_started_at ON builds USING btree (started_at, id) WHERE ((started_at IS NOT NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_by_status ON builds USING btree (status, id) WHERE (phase <> ALL (ARRAY['initializing'::text, 'running'::text]));
CREATE INDEX builds_by_updated_at ON builds USING btree (updated_at, id) WHERE (phase <> ALL (ARRAY['initializing'::text, 'running'::text]));
CREATE INDEX builds_by_workspace_id ON builds USING btree (workspace_id, id) WHERE (phase <> ALL (ARRAY['initializing'::text, 'running'::text]));
CREATE INDEX builds_cancel_reason_nulls ON builds USING btree (id) WHERE ((cancel_reason IS NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_cancel_requested_at_nulls ON builds USING btree (id) WHERE ((cancel_requested_at IS NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_commit_sha_nulls ON builds USING btree (id) WHERE ((commit_sha IS NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_completed_at_nulls ON builds USING btree (id) WHERE ((completed_at IS NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_created_by_nulls ON builds USING btree (id) WHERE ((created_by IS NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_error_nulls ON builds USING btree (id) WHERE ((error IS NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_image_tag_nulls ON builds USING btree (id) WHERE ((image_tag IS NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_list ON builds USING btree (created_at, id) WHERE (phase <> ALL (ARRAY['initializing'::text, 'running'::text]));
CREATE INDEX builds_list_by_creator ON builds USING btree (created_by, created_at, id) WHERE ((created_by IS NOT NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_list_by_status ON builds USING btree (status, created_at, id) WHERE (phase <> ALL (ARRAY['initializing'::text, 'running'::text]));
CREATE INDEX builds_list_by_trigger ON builds USING btree (build_trigger, created_at, id) WHERE (phase <> ALL (ARRAY['initializing'::text, 'running'::text]));
CREATE INDEX builds_list_by_workspace ON builds USING btree (workspace_id, created_at, id) WHERE (phase <> ALL (ARRAY['initializing'::text, 'running'::text]));
CREATE INDEX builds_outcome_nulls ON builds USING btree (id) WHERE ((outcome IS NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_owner_nulls ON builds USING btree (id) WHERE ((owner IS NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_queued ON builds USING btree (created_at, id) WHERE (phase = 'queued'::text);
CREATE INDEX builds_running_at_nulls ON builds USING btree (id) WHERE ((running_at IS NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_source_event_id_nulls ON builds USING btree (id) WHERE ((source_event_id IS NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE INDEX builds_started_at_nulls ON builds USING btree (id) WHERE ((started_at IS NULL) AND (phase <> ALL (ARRAY['initializing'::text, 'running'::text])));
CREATE TRIGGER build_counts_delete AFTER DELETE ON builds REFERENCING OLD TABLE AS removed_builds FOR EACH STATEMENT EXECUTE FUNCTION build_counts_deleted();
CREATE TRIGGER build_counts_insert AFTER INSERT ON builds REFERENCING NEW TABLE AS added_builds FOR EACH STATEMENT EXECUTE FUNCTION build_counts_inserted();
CREATE TRIGGER build_counts_update AFTER UPDATE ON builds REFERENCING OLD TABLE AS old_builds NEW TABLE AS new_builds FOR EACH STATEMENT EXECUTE FUNCTION build_counts_updated();
CREATE TRIGGER build_totals_delete AFTER DELETE ON builds REFERENCING OLD TABLE AS removed_builds FOR EACH STATEMENT EXECUTE FUNCTION build_totals_deleted();
CREATE TRIGGER build_totals_insert AFTER INSERT ON builds REFERENCING NEW TABLE AS added_builds FOR EACH STATEMENT EXECUTE FUNCTION build_totals_inserted();
CREATE TRIGGER build_totals_update AFTER UPDATE ON builds REFERENCING OLD TABLE AS old_builds NEW TABLE AS new_builds FOR EACH STATEMENT EXECUTE FUNCTION build_totals_updated();

CREATE TABLE events (
  xid xid8 DEFAULT pg_current_xact_id() NOT NULL,
  seq bigint DEFAULT nextval('events_seq_seq'::regclass) NOT NULL,
  id text COLLATE "C" NOT NULL,
  workspace_id text COLLATE "C" NOT NULL,
  type text COLLATE "C" NOT NULL,
  subject text COLLATE "C" NOT NULL,
  "timestamp" bigint NOT NULL,
  data text COLLATE "C" NOT NULL,
  CONSTRAINT events_pkey PRIMARY KEY (xid, seq)
);
CREATE INDEX events_by_workspace ON events USING btree (workspace_id, xid, seq);

CREATE TABLE kiln_migrations (
  version integer NOT NULL,
  name text NOT NULL,
  applied_at bigint NOT NULL,
  CONSTRAINT kiln_migrations_pkey PRIMARY KEY (version)
);

CREATE TABLE leases (
  name text COLLATE "C" NOT NULL,
  owner text COLLATE "C" NOT NULL,
  expires_at bigint NOT NULL,
  CONSTRAINT leases_pkey PRIMARY KEY (name)
);

CREATE TABLE log_lines (
  build_id text COLLATE "C" NOT NULL,
  seq bigint NOT NULL,
  ts bigint NOT NULL,
  stream text COLLATE "C" NOT NULL,
  step text COLLATE "C",
  text text COLLATE "C" NOT NULL,
  CONSTRAINT log_lines_pkey PRIMARY KEY (build_id, seq),
  CONSTRAINT log_lines_build_id_fkey FOREIGN KEY (build_id) REFERENCES builds(id)
);

CREATE TABLE log_stats (
  build_id text COLLATE "C" NOT NULL,
  last_seq bigint NOT NULL,
  head_bytes bigint NOT NULL,
  head_last_seq bigint,
  tail_bytes bigint NOT NULL,
  dropped_lines bigint NOT NULL,
  dropped_bytes bigint NOT NULL,
  dropped_through_seq bigint NOT NULL,
  truncated_at bigint,
  expired_at bigint,
  CONSTRAINT log_stats_pkey PRIMARY KEY (build_id),
  CONSTRAINT log_stats_build_id_fkey FOREIGN KEY (build_id) REFERENCES builds(id)
);

CREATE TABLE source_events (
  id text COLLATE "C" NOT NULL,
  workspace_id text COLLATE "C" NOT NULL,
  delivery_id text COLLATE "C" NOT NULL,
  kind text COLLATE "C" NOT NULL,
  repository text COLLATE "C" NOT NULL,
  branch text COLLATE "C",
  commit_sha text COLLATE "C",
  changed_paths text COLLATE "C" NOT NULL,
  author text COLLATE "C",
  message text COLLATE "C",
  received_at bigint NOT NULL,
  CONSTRAINT source_events_pkey PRIMARY KEY (id),
  CONSTRAINT source_events_workspace_id_delivery_id_key UNIQUE (workspace_id, delivery_id),
  CONSTRAINT source_events_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces(id)
);

CREATE TABLE token_workspaces (
  token_id text COLLATE "C" NOT NULL,
  workspace_id text COLLATE "C" NOT NULL,
  CONSTRAINT token_workspaces_pkey PRIMARY KEY (token_id, workspace_id),
  CONSTRAINT token_workspaces_token_id_fkey FOREIGN KEY (token_id) REFERENCES api_tokens(id),
  CONSTRAINT token_workspaces_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces(id)
);

CREATE TABLE triggers (
  id text COLLATE "C" NOT NULL,
  workspace_id text COLLATE "C" NOT NULL,
  app_id text COLLATE "C" NOT NULL,
  name text COLLATE "C" NOT NULL,
  repository text COLLATE "C",
  branch_includes text NOT NULL,
  branch_excludes text NOT NULL,
  path_includes text NOT NULL,
  path_excludes text NOT NULL,
  build_command text,
  deploy_command text,
  root_directory text,
  caching_enabled boolean NOT NULL,
  environment text NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  deleted_at bigint,
  CONSTRAINT triggers_pkey PRIMARY KEY (id),
  CONSTRAINT triggers_app_id_fkey FOREIGN KEY (app_id) REFERENCES apps(id),
  CONSTRAINT triggers_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces(id)
);
CREATE INDEX triggers_live ON triggers USING btree (workspace_id, created_at, id) WHERE (deleted_at IS NULL);

CREATE TABLE webhook_deliveries (
  seq bigint DEFAULT nextval('webhook_deliveries_seq_seq'::regclass) NOT NULL,
  id text COLLATE "C" NOT NULL,
  webhook_id text COLLATE "C" NOT NULL,
  workspace_id text COLLATE "C" NOT NULL,
  event_id text COLLATE "C" NOT NULL,
  event_type text COLLATE "C" NOT NULL,
  subject text COLLATE "C" NOT NULL,
  body text COLLATE "C" NOT NULL,
  status text COLLATE "C" NOT NULL,
  attempts integer NOT NULL,
  last_attempt_at bigint,
  last_status_code integer,
  last_error text COLLATE "C",
  last_duration_ms integer,
  next_attempt_at bigint,
  created_at bigint NOT NULL,
  delivered_at bigint,
  lease_owner text COLLATE "C",
  lease_claim integer DEFAULT 0 NOT NULL,
  lease_expires_at bigint,
  CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (seq),
  CONSTRAINT webhook_deliveries_id_key UNIQUE (id),
  CONSTRAINT webhook_deliveries_webhook_id_fkey FOREIGN KEY (webhook_id) REFERENCES webhooks(id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries USING btree (webhook_id, seq);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries USING btree (next_attempt_at, seq) WHERE (status = 'pending'::text);
CREATE INDEX webhook_deliveries_pending_by_subject ON webhook_deliveries USING btree (webhook_id, subject, seq) WHERE (status = 'pending'::text);

CREATE TABLE webhook_fanout (
  id boolean DEFAULT true NOT NULL,
  xid xid8 NOT NULL,
  seq bigint NOT NULL,
  CONSTRAINT webhook_fanout_pkey PRIMARY KEY (id),
  CONSTRAINT webhook_fanout_id_check CHECK (id)
);

CREATE TABLE webhooks (
  id text COLLATE "C" NOT NULL,
  workspace_id text COLLATE "C" NOT NULL,
  url text COLLATE "C" NOT NULL,
  types text COLLATE "C" NOT NULL,
  enabled boolean NOT NULL,
  disabled_reason text COLLATE "C",
  secret text COLLATE "C" NOT NULL,
  previous_secret text COLLATE "C",
  previous_secret_expires_at bigint,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  CONSTRAINT webhooks_pkey PRIMARY KEY (id),
  CONSTRAINT webhooks_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces(id)
);
CREATE INDEX webhooks_by_workspace ON webhooks USING btree (workspace_id, created_at, id);

CREATE TABLE workspaces (
  id text COLLATE "C" NOT NULL,
  name text COLLATE "C" NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  CONSTRAINT workspaces_pkey PRIMARY KEY (id)
);
CREATE INDEX workspaces_list ON workspaces USING btree (created_at, id);

CREATE OR REPLACE FUNCTION build_counts_deleted()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO <schema>, 'pg_temp'
AS $function$
BEGIN
  INSERT INTO build_counts AS c (workspace_id, entity_id, status, build_trigger, created_by, n)
  SELECT workspace_id, entity_id, status, build_trigger, coalesce(created_by, ''), -count(*)
  FROM removed_builds GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (workspace_id, entity_id, status, build_trigger, created_by) DO UPDATE SET n = c.n + excluded.n;
  RETURN NULL;
END $function$;

CREATE OR REPLACE FUNCTION build_counts_inserted()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO <schema>, 'pg_temp'
AS $function$
BEGIN
  INSERT INTO build_counts AS c (workspace_id, entity_id, status, build_trigger, created_by, n)
  SELECT workspace_id, entity_id, status, build_trigger, coalesce(created_by, ''), count(*)
  FROM added_builds GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (workspace_id, entity_id, status, build_trigger, created_by) DO UPDATE SET n = c.n + excluded.n;
  RETURN NULL;
END $function$;

CREATE OR REPLACE FUNCTION build_counts_updated()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO <schema>, 'pg_temp'
AS $function$
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
END $function$;

CREATE OR REPLACE FUNCTION build_totals_deleted()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO <schema>, 'pg_temp'
AS $function$
BEGIN
  INSERT INTO build_totals AS t (workspace_id, entity_id, status, build_trigger, n)
  SELECT workspace_id, entity_id, status, build_trigger, -count(*) FROM removed_builds
  GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
  ON CONFLICT (workspace_id, entity_id, status, build_trigger) DO UPDATE SET n = t.n + excluded.n;
  RETURN NULL;
END $function$;

CREATE OR REPLACE FUNCTION build_totals_inserted()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO <schema>, 'pg_temp'
AS $function$
BEGIN
  INSERT INTO build_totals AS t (workspace_id, entity_id, status, build_trigger, n)
  SELECT workspace_id, entity_id, status, build_trigger, count(*) FROM added_builds
  GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
  ON CONFLICT (workspace_id, entity_id, status, build_trigger) DO UPDATE SET n = t.n + excluded.n;
  RETURN NULL;
END $function$;

CREATE OR REPLACE FUNCTION build_totals_updated()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO <schema>, 'pg_temp'
AS $function$
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
END $function$;
