/**
 * A webhook delivery's row: the delivery, the body every attempt sends, and its lease (owner, claim
 * number, expiry) as for builds. Its order column is assigned by each storage, so it is not part of the row.
 */
import type { DateTime } from "effect"
import type * as Event from "../../Event.ts"
import type * as Id from "../../Id.ts"
import type * as Webhook from "../../Webhook.ts"
import { millis, utc, utcOrNull } from "./columnValues.ts"

export interface DeliveryRow {
  readonly id: string
  readonly webhook_id: string
  readonly workspace_id: string
  readonly event_id: string
  readonly event_type: string
  readonly subject: string
  readonly body: string
  readonly status: string
  readonly attempts: number
  readonly last_attempt_at: number | null
  readonly last_status_code: number | null
  readonly last_error: string | null
  readonly last_duration_ms: number | null
  readonly next_attempt_at: number | null
  readonly created_at: number
  readonly delivered_at: number | null
  readonly lease_owner: string | null
  readonly lease_claim: number
  readonly lease_expires_at: number | null
}

/** The columns a delivery's view is read from: not its body or lease. */
export type DeliveryViewRow = Omit<DeliveryRow, "body" | "lease_owner" | "lease_claim" | "lease_expires_at">

export const toDelivery = (row: DeliveryViewRow): Webhook.Delivery => ({
  id: row.id as Id.DeliveryId,
  webhookId: row.webhook_id as Id.WebhookId,
  workspaceId: row.workspace_id as Id.WorkspaceId,
  eventId: row.event_id as Id.EventId,
  eventType: row.event_type as Event.Type,
  subject: row.subject,
  status: row.status as Webhook.DeliveryStatus,
  attempts: row.attempts,
  lastAttemptAt: utcOrNull(row.last_attempt_at),
  lastStatusCode: row.last_status_code,
  lastError: row.last_error,
  lastDurationMs: row.last_duration_ms,
  nextAttemptAt: utcOrNull(row.next_attempt_at),
  createdAt: utc(row.created_at),
  deliveredAt: utcOrNull(row.delivered_at)
})

/** A new delivery of `event` to one endpoint: pending, due at `at`, never attempted, with no lease. */
export const newDelivery = (
  id: Id.DeliveryId,
  webhookId: Id.WebhookId,
  event: Event.Event,
  body: string,
  at: DateTime.Utc
): DeliveryRow => ({
  id,
  webhook_id: webhookId,
  workspace_id: event.workspaceId,
  event_id: event.id,
  event_type: event.type,
  subject: event.subject,
  body,
  status: "pending",
  attempts: 0,
  last_attempt_at: null,
  last_status_code: null,
  last_error: null,
  last_duration_ms: null,
  next_attempt_at: millis(at),
  created_at: millis(at),
  delivered_at: null,
  lease_owner: null,
  lease_claim: 0,
  lease_expires_at: null
})

/** The columns an attempt writes, as `finishDeliveries` records it. */
export const attemptColumns = (attempt: Webhook.Attempt) => ({
  status:
    attempt.next._tag === "Delivered" ? "delivered" : attempt.next._tag === "Retry" ? "pending" : "failed",
  last_attempt_at: millis(attempt.at),
  last_status_code: attempt.statusCode,
  last_error: attempt.error,
  last_duration_ms: attempt.durationMs,
  next_attempt_at: attempt.next._tag === "Retry" ? millis(attempt.next.at) : null,
  delivered_at: attempt.next._tag === "Delivered" ? millis(attempt.at) : null
})

export const deliveryColumns = [
  "id",
  "webhook_id",
  "workspace_id",
  "event_id",
  "event_type",
  "subject",
  "body",
  "status",
  "attempts",
  "last_attempt_at",
  "last_status_code",
  "last_error",
  "last_duration_ms",
  "next_attempt_at",
  "created_at",
  "delivered_at",
  "lease_owner",
  "lease_claim",
  "lease_expires_at"
] as const satisfies ReadonlyArray<keyof DeliveryRow>
