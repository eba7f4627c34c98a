/**
 * Webhook deliveries on PostgreSQL: the fan-out of the feed into one delivery per (event, endpoint), and
 * their leases. The fan-out reads, then moves the cursor only from where it read it: of processes that
 * read the same events, one moves them and the others move nothing. A claim is one statement on the
 * database clock: `FOR NO KEY UPDATE SKIP LOCKED` lets claimers pass each other's rows, and the lease
 * condition is checked again on the row as locked, so a delivery is never leased twice while its lease
 * lives. Its claim number fences the holder's result, as a build's attempt fences its owner.
 */
import type { Access } from "@kiln/core"
import { Event, Id, Storage, type Webhook } from "@kiln/core"
import { SqlRows, type StorageDriver } from "@kiln/core/adapter"
import { Effect } from "effect"
import { inScope, scope, visible } from "./access.ts"
import type { Database } from "./connection.ts"
import { type EventRow, eventsWritten, settled, toEvent } from "./events.ts"
import { databaseNow, list, prepared } from "./sql.ts"
import type { Notify } from "./transaction.ts"

type DeliveryRow = SqlRows.DeliveryViewRow

const deliveryNames = [
  "id",
  "webhook_id",
  "workspace_id",
  "event_id",
  "event_type",
  "subject",
  "status",
  "attempts",
  "last_attempt_at",
  "last_status_code",
  "last_error",
  "last_duration_ms",
  "next_attempt_at",
  "created_at",
  "delivered_at"
] as const satisfies ReadonlyArray<keyof DeliveryRow>
const deliveryColumns = list(deliveryNames)

const { toDelivery } = SqlRows

interface FanOutRow extends EventRow {
  readonly xid: string
  /** A bigint column: `pg` answers it as decimal text, passed back as it came. */
  readonly seq: string
  readonly webhook_id: string | null
  /** Where the cursor was when the events were read. */
  readonly from_xid: string
  readonly from_seq: string
}

/** A new delivery's columns as the statements that insert deliveries take them, one array each. */
const newDeliveryColumns = [
  ["id", "text"],
  ["webhook_id", "text"],
  ["workspace_id", "text"],
  ["event_id", "text"],
  ["event_type", "text"],
  ["subject", "text"],
  ["body", "text"]
] as const
const newDeliveryNames = newDeliveryColumns.map(([name]) => name).join(", ")

interface NewDelivery {
  readonly id: Id.DeliveryId
  readonly webhookId: string
  readonly event: Event.Event
}

const newDeliveryValues = (deliveries: ReadonlyArray<NewDelivery>): Array<Array<unknown>> => [
  deliveries.map((delivery) => delivery.id),
  deliveries.map((delivery) => delivery.webhookId),
  deliveries.map((delivery) => delivery.event.workspaceId),
  deliveries.map((delivery) => delivery.event.id),
  deliveries.map((delivery) => delivery.event.type),
  deliveries.map((delivery) => delivery.event.subject),
  deliveries.map((delivery) => Event.body(delivery.event))
]

/**
 * Inserts the deliveries in the arrays from parameter 1 on, pending and due now on the database clock, in
 * their order (the order column follows it), when the condition `when` holds.
 */
const insertDeliveries = (
  when = "true"
) => `INSERT INTO webhook_deliveries (${newDeliveryNames}, status, attempts, next_attempt_at, created_at)
  SELECT ${newDeliveryNames}, 'pending', 0, clock.now, clock.now
  FROM unnest(${newDeliveryColumns.map(([, type], i) => `$${i + 1}::${type}[]`).join(", ")})
    WITH ORDINALITY AS d(${newDeliveryNames}, n),
    (SELECT ${databaseNow} AS now) clock
  WHERE ${when}
  ORDER BY d.n`

const after = newDeliveryColumns.length + 1
const maxSeq = "9223372036854775807"

const deliveryStatements = {
  webhookWorkspace: prepared("webhook_workspace", "SELECT workspace_id FROM webhooks WHERE id = $1"),
  byId: prepared("delivery_by_id", `SELECT ${deliveryColumns} FROM webhook_deliveries WHERE id = $1`),
  // Newest first, before the order of the delivery `$2` names (from the newest when it names none; nothing
  // when it names none of the endpoint's).
  list: prepared(
    "list_deliveries",
    `SELECT ${deliveryColumns} FROM webhook_deliveries
     WHERE webhook_id = $1 AND seq < CASE WHEN $2::text IS NULL THEN ${maxSeq}
       ELSE (SELECT seq FROM webhook_deliveries WHERE id = $2 AND webhook_id = $1) END
     ORDER BY seq DESC LIMIT $3`
  ),
  redeliver: prepared(
    "redeliver",
    `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ${databaseNow}, delivered_at = NULL,
       lease_owner = NULL, lease_expires_at = NULL
     WHERE id = $1 AND ${inScope(2)}
     RETURNING ${deliveryColumns}, pg_notify($4, $5)`
  ),
  ping: prepared(
    "enqueue_ping",
    `WITH inserted AS (${insertDeliveries()} RETURNING ${deliveryColumns})
     SELECT inserted.*, pg_notify($${after}, $${after + 1}) FROM inserted`
  ),
  // The cursor; the events after it that every transaction before them has ended (see events.ts), each
  // with every endpoint of its workspace that takes its type. The cursor is compared as values, not joined:
  // a join leaves the planner free to read the feed from its start and filter, which grows with the feed.
  fanOutRead: prepared(
    "fan_out_read",
    `WITH cursor AS MATERIALIZED (SELECT xid, seq FROM webhook_fanout),
     moved AS MATERIALIZED (
       SELECT e.* FROM events e
       WHERE (e.xid, e.seq) > ((SELECT xid FROM cursor), (SELECT seq FROM cursor)) AND ${settled("e")}
       ORDER BY e.xid, e.seq LIMIT $1
     ),
     endpoints AS MATERIALIZED (
       SELECT id, workspace_id, types, created_at FROM webhooks
       WHERE workspace_id IN (SELECT workspace_id FROM moved)
     )
     SELECT m.xid::text || '.' || m.seq::text AS cursor, m.xid::text AS xid, m.seq, m.id, m.workspace_id, m.type,
       m.subject, m."timestamp", m.data, w.id AS webhook_id,
       (SELECT xid FROM cursor)::text AS from_xid, (SELECT seq FROM cursor) AS from_seq
     FROM moved m LEFT JOIN endpoints w
       ON w.workspace_id = m.workspace_id AND (w.types = '[]' OR w.types::jsonb ? m.type)
     ORDER BY m.xid, m.seq, w.created_at, w.id`
  ),
  // Moves the cursor from where the read found it, and inserts the deliveries only if it did: of two
  // processes that read the same events, the second waits on the cursor row, finds it moved, and writes
  // nothing. An endpoint deleted since the read fails the insert, and the next call reads again.
  fanOutWrite: prepared(
    "fan_out_write",
    `WITH advanced AS (
       UPDATE webhook_fanout SET xid = $${after}::xid8, seq = $${after + 1}
       WHERE xid = $${after + 2}::xid8 AND seq = $${after + 3} RETURNING true AS moved
     ),
     inserted AS (${insertDeliveries("EXISTS (SELECT 1 FROM advanced)")})
     SELECT moved, CASE WHEN cardinality($1::text[]) > 0 THEN pg_notify($${after + 4}, $${after + 5}) END
     FROM advanced`
  ),
  // Due deliveries of enabled endpoints with no live lease that are the first pending delivery of their
  // subject to their endpoint, oldest due first; a row another claimer holds is skipped. The first is
  // looked up per row (a subquery is planned with its values as an index condition), where an anti-join
  // may scan every pending delivery for each. Each brings up to `$4` of its subject's next pending ones
  // while they are due and free; only the claimer holding a first's row lock can reach its later ones.
  claim: prepared(
    "claim_deliveries",
    `WITH clock AS (SELECT ${databaseNow} AS now),
     picked AS MATERIALIZED (
       SELECT d.seq, d.webhook_id, d.subject FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id, clock
       WHERE d.status = 'pending' AND d.next_attempt_at <= clock.now AND w.enabled
         AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= clock.now)
         AND d.seq = (
           SELECT min(p.seq) FROM webhook_deliveries p
           WHERE p.webhook_id = d.webhook_id AND p.subject = d.subject AND p.status = 'pending'
         )
       ORDER BY d.next_attempt_at, d.seq LIMIT $3
       FOR NO KEY UPDATE OF d SKIP LOCKED
     ),
     runs AS MATERIALIZED (
       SELECT seq FROM picked
       UNION ALL
       SELECT later.seq FROM picked, LATERAL (
         SELECT n.seq, bool_and(n.free) OVER (ORDER BY n.seq) AS unbroken FROM (
           SELECT s.seq, s.next_attempt_at <= clock.now
               AND (s.lease_expires_at IS NULL OR s.lease_expires_at <= clock.now) AS free
           FROM webhook_deliveries s, clock
           WHERE s.webhook_id = picked.webhook_id AND s.subject = picked.subject AND s.status = 'pending'
             AND s.seq > picked.seq
           ORDER BY s.seq LIMIT $4
         ) n
       ) later
       WHERE later.unbroken
     ),
     claimed AS (
       UPDATE webhook_deliveries d SET lease_owner = $1, lease_claim = d.lease_claim + 1,
         lease_expires_at = clock.now + $2
       FROM runs, clock, webhooks w
       WHERE d.seq = runs.seq AND w.id = d.webhook_id AND d.status = 'pending'
       RETURNING d.seq, ${list(deliveryNames, "d")}, d.lease_claim, d.body, w.url, w.secret,
         CASE WHEN w.previous_secret_expires_at > clock.now THEN w.previous_secret END AS previous_secret
     )
     SELECT * FROM claimed ORDER BY seq`
  ),
  // Fenced on the lease's holder and claim; the endpoint is disabled in the same statement when asked.
  // One row per attempt, as parallel arrays with each one's place in the batch, and the same for the
  // leases given back unsent: a sender's whole batch is one statement.
  finish: prepared(
    "finish_deliveries",
    `WITH attempt AS (
       SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::int[], $5::text[], $6::bigint[], $7::int[],
         $8::text[], $9::int[], $10::bigint[], $11::bigint[], $12::text[])
         AS a(n, id, owner, claim, status, at, status_code, error, duration_ms, next_attempt_at, delivered_at, disable)
     ), finished AS (
       UPDATE webhook_deliveries d SET status = a.status, attempts = d.attempts + 1, last_attempt_at = a.at,
         last_status_code = a.status_code, last_error = a.error, last_duration_ms = a.duration_ms,
         next_attempt_at = a.next_attempt_at, delivered_at = a.delivered_at,
         lease_owner = NULL, lease_expires_at = NULL
       FROM attempt a
       WHERE d.id = a.id AND d.lease_owner = a.owner AND d.lease_claim = a.claim AND d.status = 'pending'
       RETURNING a.n, d.webhook_id, a.disable, a.at
     ), disabled AS (
       UPDATE webhooks w SET enabled = false, disabled_reason = f.disable, updated_at = f.at
       FROM finished f WHERE f.disable IS NOT NULL AND w.id = f.webhook_id
     ), released AS (
       UPDATE webhook_deliveries d SET lease_owner = NULL, lease_expires_at = NULL
       FROM unnest($13::int[], $14::text[], $15::text[], $16::int[]) AS r(n, id, owner, claim)
       WHERE d.id = r.id AND d.lease_owner = r.owner AND d.lease_claim = r.claim AND d.status = 'pending'
       RETURNING r.n
     )
     SELECT n FROM finished UNION ALL SELECT n FROM released`
  )
}

interface ClaimedRow extends DeliveryRow {
  readonly lease_claim: number
  readonly body: string
  readonly url: string
  readonly secret: string
  readonly previous_secret: string | null
}

export const makeDeliveryQueries = (
  db: Database,
  notify: Notify
): Pick<
  StorageDriver.Queries,
  | "fanOutEvents"
  | "claimDeliveries"
  | "finishDeliveries"
  | "listDeliveries"
  | "getDelivery"
  | "redeliver"
  | "enqueuePing"
> => {
  const { run } = db
  const webhookVisible = (access: Access.Access, id: Id.WebhookId) =>
    Effect.flatMap(
      run<{ readonly workspace_id: string }>(deliveryStatements.webhookWorkspace, [id]),
      visible(access, "webhook", id)
    )
  const notFound =
    (id: string) =>
    <R>(found: ReadonlyArray<R>): Effect.Effect<R, Storage.NotFound> =>
      found[0] === undefined ? Effect.fail(Storage.NotFound.of("delivery", id)) : Effect.succeed(found[0])

  return {
    fanOutEvents: Effect.fnUntraced(function* (max) {
      const read = yield* run<FanOutRow>(deliveryStatements.fanOutRead, [max])
      if (read.length === 0) return 0
      const nextId = yield* Id.generator("dlv")
      const deliveries: Array<NewDelivery> = []
      let moved = 0
      let previous: string | undefined
      for (const row of read) {
        if (row.cursor !== previous) moved++
        previous = row.cursor
        if (row.webhook_id !== null) {
          deliveries.push({ id: nextId(), webhookId: row.webhook_id, event: toEvent(row) })
        }
      }
      const last = read[read.length - 1]!
      const written = yield* run(deliveryStatements.fanOutWrite, [
        ...newDeliveryValues(deliveries),
        last.xid,
        last.seq,
        last.from_xid,
        last.from_seq,
        ...notify(eventsWritten)
      ])
      return written.length === 0 ? 0 : moved
    }),
    claimDeliveries: (request) =>
      Effect.map(
        run<ClaimedRow>(deliveryStatements.claim, [
          request.owner,
          request.leaseMs,
          request.max,
          Math.max(1, request.perSubject ?? 1) - 1
        ]),
        (claimed) =>
          claimed.map(
            (row): Webhook.ClaimedDelivery => ({
              delivery: toDelivery(row),
              fence: { owner: request.owner, claim: row.lease_claim },
              url: row.url,
              secrets: (row.previous_secret === null
                ? [row.secret]
                : [row.secret, row.previous_secret]) as Array<Webhook.Secret>,
              body: row.body
            })
          )
      ),
    finishDeliveries: (finished) => {
      if (finished.length === 0) return Effect.succeed([])
      const attempts: Array<{
        readonly n: number
        readonly one: Webhook.FinishedDelivery
        readonly attempt: Webhook.Attempt
      }> = []
      const released: Array<{ readonly n: number; readonly one: Webhook.FinishedDelivery }> = []
      finished.forEach((one, n) => {
        if (one.attempt === null) released.push({ n, one })
        else attempts.push({ n, one, attempt: one.attempt })
      })
      const columns = attempts.map(({ attempt }) => SqlRows.attemptColumns(attempt))
      return Effect.map(
        run<{ readonly n: number }>(deliveryStatements.finish, [
          attempts.map(({ n }) => n),
          attempts.map(({ one }) => one.id),
          attempts.map(({ one }) => one.fence.owner),
          attempts.map(({ one }) => one.fence.claim),
          columns.map((c) => c.status),
          columns.map((c) => c.last_attempt_at),
          columns.map((c) => c.last_status_code),
          columns.map((c) => c.last_error),
          columns.map((c) => (c.last_duration_ms === null ? null : Math.round(c.last_duration_ms))),
          columns.map((c) => c.next_attempt_at),
          columns.map((c) => c.delivered_at),
          attempts.map(({ attempt }) => attempt.disable),
          released.map(({ n }) => n),
          released.map(({ one }) => one.id),
          released.map(({ one }) => one.fence.owner),
          released.map(({ one }) => one.fence.claim)
        ]),
        // By position: a batch may hold a stale attempt and the live one of the same delivery.
        (rows) => {
          const recorded = new Set(rows.map((row) => row.n))
          return finished.map((_, n) => recorded.has(n))
        }
      )
    },
    listDeliveries: (access, webhookId, read) =>
      Effect.andThen(
        webhookVisible(access, webhookId),
        Effect.map(run<DeliveryRow>(deliveryStatements.list, [webhookId, read.before, read.limit]), (found) =>
          found.map(toDelivery)
        )
      ),
    getDelivery: (access, id) =>
      Effect.map(
        Effect.flatMap(run<DeliveryRow>(deliveryStatements.byId, [id]), visible(access, "delivery", id)),
        toDelivery
      ),
    redeliver: (access, id) =>
      Effect.map(
        Effect.flatMap(
          run<DeliveryRow>(deliveryStatements.redeliver, [id, ...scope(access), ...notify(eventsWritten)]),
          notFound(id)
        ),
        toDelivery
      ),
    enqueuePing: Effect.fnUntraced(function* (access, webhookId, event) {
      const webhook = yield* webhookVisible(access, webhookId)
      const id = yield* Id.generate("dlv")
      const found = yield* run<DeliveryRow>(deliveryStatements.ping, [
        ...newDeliveryValues([
          { id, webhookId, event: { ...event, workspaceId: webhook.workspace_id as Id.WorkspaceId } }
        ]),
        ...notify(eventsWritten)
      ])
      return toDelivery(found[0]!)
    })
  }
}
