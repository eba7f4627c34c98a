/**
 * A webhook endpoint's row: its types are JSON text, and its secrets are stored as they sign (a sender
 * needs the key itself), but never read into the domain's `Webhook`.
 */
import type * as Id from "../../Id.ts"
import type * as Webhook from "../../Webhook.ts"
import { millis, millisOrNull, parse, utc, utcOrNull } from "./columnValues.ts"

export interface WebhookRow {
  readonly id: string
  readonly workspace_id: string
  readonly url: string
  readonly types: string
  /** 0 or 1 as written; SQLite reads back a number, PostgreSQL (a BOOLEAN column) a boolean. */
  readonly enabled: number | boolean
  readonly disabled_reason: string | null
  readonly secret: string
  readonly previous_secret: string | null
  readonly previous_secret_expires_at: number | null
  readonly created_at: number
  readonly updated_at: number
}

/** The columns an endpoint's view is read from: never its secrets. */
export type WebhookViewRow = Omit<WebhookRow, "secret" | "previous_secret">

export const toWebhook = (row: WebhookViewRow): Webhook.Webhook => ({
  id: row.id as Id.WebhookId,
  workspaceId: row.workspace_id as Id.WorkspaceId,
  url: row.url,
  types: parse(row.types),
  enabled: Boolean(row.enabled),
  disabledReason: row.disabled_reason,
  previousSecretExpiresAt: utcOrNull(row.previous_secret_expires_at),
  createdAt: utc(row.created_at),
  updatedAt: utc(row.updated_at)
})

/** The secrets a delivery is signed with at `now`: the current one, then the previous one while it is valid. */
export const webhookSecrets = (
  row: Pick<WebhookRow, "secret" | "previous_secret" | "previous_secret_expires_at">,
  now: number
): ReadonlyArray<Webhook.Secret> =>
  row.previous_secret !== null &&
  row.previous_secret_expires_at !== null &&
  row.previous_secret_expires_at > now
    ? [row.secret as Webhook.Secret, row.previous_secret as Webhook.Secret]
    : [row.secret as Webhook.Secret]

export const fromWebhook = (
  webhook: Webhook.Webhook,
  secrets: { readonly secret: Webhook.Secret; readonly previousSecret: Webhook.Secret | null }
): WebhookRow => ({
  id: webhook.id,
  workspace_id: webhook.workspaceId,
  url: webhook.url,
  types: JSON.stringify(webhook.types),
  enabled: webhook.enabled ? 1 : 0,
  disabled_reason: webhook.disabledReason,
  secret: secrets.secret,
  previous_secret: secrets.previousSecret,
  previous_secret_expires_at: millisOrNull(webhook.previousSecretExpiresAt),
  created_at: millis(webhook.createdAt),
  updated_at: millis(webhook.updatedAt)
})

export const webhookColumns = [
  "id",
  "workspace_id",
  "url",
  "types",
  "enabled",
  "disabled_reason",
  "secret",
  "previous_secret",
  "previous_secret_expires_at",
  "created_at",
  "updated_at"
] as const satisfies ReadonlyArray<keyof WebhookRow>
