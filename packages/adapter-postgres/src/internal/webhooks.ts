/**
 * Webhook endpoints on PostgreSQL. The signing secrets live in the row beside the endpoint, and only the
 * delivery claim reads them back out (`deliveries.ts`). A write the caller names by id checks the caller's
 * workspaces in its own statement, so it changes only a row the caller may see.
 */
import { Access, Id, Storage, Webhook } from "@kiln/core"
import { SqlRows, type StorageDriver } from "@kiln/core/adapter"
import { Clock, DateTime, Effect } from "effect"
import { inScope, scope, visible } from "./access.ts"
import type { Database } from "./connection.ts"
import { eventsWritten } from "./events.ts"
import { insertInto, list, prepared } from "./sql.ts"
import { statements } from "./statements.ts"
import type { Notify } from "./transaction.ts"

type WebhookRow = SqlRows.WebhookViewRow

/** The columns an endpoint is read from: never its secrets. */
const webhookColumns = list([
  "id",
  "workspace_id",
  "url",
  "types",
  "enabled",
  "disabled_reason",
  "previous_secret_expires_at",
  "created_at",
  "updated_at"
])

const { toWebhook } = SqlRows

const webhookStatements = {
  insert: prepared(
    "insert_webhook",
    insertInto("webhooks", [
      "id",
      "workspace_id",
      "url",
      "types",
      "enabled",
      "secret",
      "created_at",
      "updated_at"
    ])
  ),
  count: prepared("count_webhooks", "SELECT count(*)::int AS n FROM webhooks WHERE workspace_id = $1"),
  byId: prepared("webhook_by_id", `SELECT ${webhookColumns} FROM webhooks WHERE id = $1`),
  // $3: one workspace, or null for all of the caller's.
  list: prepared(
    "list_webhooks",
    `SELECT ${webhookColumns} FROM webhooks WHERE ${inScope(1)} AND ($3::text IS NULL OR workspace_id = $3)
     ORDER BY created_at, id`
  ),
  // A field left null stays; enabling or disabling clears the reason Kiln disabled it for. Published, since
  // an endpoint enabled again has deliveries due.
  update: prepared(
    "update_webhook",
    `UPDATE webhooks SET url = coalesce($4, url), types = coalesce($5, types), enabled = coalesce($6, enabled),
       disabled_reason = CASE WHEN $6::boolean IS NULL THEN disabled_reason END, updated_at = $7
     WHERE id = $1 AND ${inScope(2)}
     RETURNING ${webhookColumns}, pg_notify($8, $9)`
  ),
  rotate: prepared(
    "rotate_webhook_secret",
    `UPDATE webhooks SET previous_secret = secret, previous_secret_expires_at = $5, secret = $4, updated_at = $6
     WHERE id = $1 AND ${inScope(2)} RETURNING ${webhookColumns}`
  ),
  // Its deliveries go with it (ON DELETE CASCADE).
  delete: prepared("delete_webhook", `DELETE FROM webhooks WHERE id = $1 AND ${inScope(2)} RETURNING id`)
}

export const makeWebhookQueries = (
  db: Database,
  notify: Notify
): Pick<
  StorageDriver.Queries,
  "createWebhook" | "getWebhook" | "listWebhooks" | "updateWebhook" | "rotateWebhookSecret" | "deleteWebhook"
> => {
  const { run, transaction } = db
  const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))
  /** The one row a scoped write answers, or `NotFound`. */
  const written =
    (id: string) =>
    <R>(found: ReadonlyArray<R>): Effect.Effect<R, Storage.NotFound> =>
      found[0] === undefined ? Effect.fail(Storage.NotFound.of("webhook", id)) : Effect.succeed(found[0])

  return {
    createWebhook: Effect.fnUntraced(function* (access, input) {
      const at = yield* now
      const id = yield* Id.generate("whk")
      if (!Access.allows(access, input.workspaceId)) {
        return yield* Storage.NotFound.of("workspace", input.workspaceId)
      }
      // Under the workspace's row lock, creations in one workspace take turns: the cap holds.
      return yield* transaction((tx) =>
        Effect.gen(function* () {
          const [workspace] = yield* tx(statements.lockWorkspace, [input.workspaceId])
          if (workspace === undefined) return yield* Storage.NotFound.of("workspace", input.workspaceId)
          const [counted] = yield* tx<{ readonly n: number }>(webhookStatements.count, [input.workspaceId])
          if (counted!.n >= Webhook.maxPerWorkspace) {
            return yield* new Storage.Conflict({
              message: `a workspace has at most ${Webhook.maxPerWorkspace} webhooks`
            })
          }
          const millis = DateTime.toEpochMillis(at)
          yield* tx(webhookStatements.insert, [
            id,
            input.workspaceId,
            input.url,
            JSON.stringify(input.types),
            input.enabled,
            input.secret,
            millis,
            millis
          ])
          return {
            id,
            workspaceId: input.workspaceId,
            url: input.url,
            types: [...input.types],
            enabled: input.enabled,
            disabledReason: null,
            previousSecretExpiresAt: null,
            createdAt: at,
            updatedAt: at
          } satisfies Webhook.Webhook
        })
      )
    }),
    getWebhook: (access, id) =>
      Effect.map(
        Effect.flatMap(run<WebhookRow>(webhookStatements.byId, [id]), visible(access, "webhook", id)),
        toWebhook
      ),
    listWebhooks: (access, workspaceId) =>
      Effect.map(run<WebhookRow>(webhookStatements.list, [...scope(access), workspaceId]), (found) =>
        found.map(toWebhook)
      ),
    updateWebhook: Effect.fnUntraced(function* (access, id, patch) {
      const at = yield* now
      const found = yield* run<WebhookRow>(webhookStatements.update, [
        id,
        ...scope(access),
        patch.url ?? null,
        patch.types === undefined ? null : JSON.stringify(patch.types),
        patch.enabled ?? null,
        DateTime.toEpochMillis(at),
        ...notify(eventsWritten)
      ])
      return toWebhook(yield* written(id)(found))
    }),
    rotateWebhookSecret: Effect.fnUntraced(function* (access, id, rotation) {
      const at = yield* now
      const found = yield* run<WebhookRow>(webhookStatements.rotate, [
        id,
        ...scope(access),
        rotation.secret,
        DateTime.toEpochMillis(rotation.previousValidUntil),
        DateTime.toEpochMillis(at)
      ])
      return toWebhook(yield* written(id)(found))
    }),
    deleteWebhook: (access, id) =>
      Effect.asVoid(Effect.flatMap(run(webhookStatements.delete, [id, ...scope(access)]), written(id)))
  }
}
