/** Webhook endpoints on SQLite: each read and write one statement or one IMMEDIATE transaction. */
import { Access, Id, Storage, Webhook } from "@kiln/core"
import { SqlRows as rows, type StorageDriver } from "@kiln/core/adapter"
import { type DateTime, Effect, Result } from "effect"
import { attempt, type Connection, immediate } from "./connection.ts"
import type { Statements } from "./statements.ts"
import { visible } from "./visible.ts"

type WebhookQueries = Pick<
  StorageDriver.Queries,
  "createWebhook" | "getWebhook" | "listWebhooks" | "updateWebhook" | "rotateWebhookSecret" | "deleteWebhook"
>

export const makeWebhookQueries = (
  db: Connection,
  sql: Statements,
  now: Effect.Effect<DateTime.Utc>
): WebhookQueries => {
  /** Reads the caller's endpoint, changes it and writes it back, in one transaction. */
  const change = (
    access: Access.Access,
    id: Id.WebhookId,
    next: (row: rows.WebhookRow, webhook: Webhook.Webhook) => rows.WebhookRow
  ) =>
    immediate(db, () =>
      Result.map(visible(sql.webhookById.get(id), access, "webhook", id), (row) => {
        const written = next(row, rows.toWebhook(row))
        sql.writeWebhook.run(written)
        return rows.toWebhook(written)
      })
    )

  return {
    createWebhook: Effect.fnUntraced(function* (access, input) {
      const at = yield* now
      const id = yield* Id.generate("whk")
      return yield* immediate(db, (): Result.Result<Webhook.Webhook, Storage.NotFound | Storage.Conflict> => {
        if (
          !Access.allows(access, input.workspaceId) ||
          sql.workspaceById.get(input.workspaceId) === undefined
        ) {
          return Result.fail(Storage.NotFound.of("workspace", input.workspaceId))
        }
        if (sql.webhookCount.get(input.workspaceId)!.n >= Webhook.maxPerWorkspace) {
          return Result.fail(
            new Storage.Conflict({
              message: `a workspace has at most ${Webhook.maxPerWorkspace} webhook endpoints`
            })
          )
        }
        const webhook: Webhook.Webhook = {
          id,
          workspaceId: input.workspaceId,
          url: input.url,
          types: input.types,
          enabled: input.enabled,
          disabledReason: null,
          previousSecretExpiresAt: null,
          createdAt: at,
          updatedAt: at
        }
        sql.insertWebhook.run(rows.fromWebhook(webhook, { secret: input.secret, previousSecret: null }))
        return Result.succeed(webhook)
      })
    }),
    getWebhook: (access, id) =>
      Effect.flatMap(
        attempt(() => sql.webhookById.get(id)),
        (row) => Effect.fromResult(Result.map(visible(row, access, "webhook", id), rows.toWebhook))
      ),
    listWebhooks: (access, workspaceId) =>
      attempt(() => {
        if (workspaceId !== null) {
          return Access.allows(access, workspaceId)
            ? sql.workspaceWebhooks.all(workspaceId).map(rows.toWebhook)
            : []
        }
        const listed =
          access._tag === "All" ? sql.allWebhooks.all() : sql.webhooksIn.all(JSON.stringify([...access.ids]))
        return listed.map(rows.toWebhook)
      }),
    updateWebhook: Effect.fnUntraced(function* (access, id, patch) {
      const at = yield* now
      return yield* change(access, id, (row, webhook) =>
        rows.fromWebhook(
          {
            ...webhook,
            url: patch.url ?? webhook.url,
            types: patch.types ?? webhook.types,
            enabled: patch.enabled ?? webhook.enabled,
            // A caller's word on `enabled` replaces Kiln's reason for disabling it, either way.
            disabledReason: patch.enabled === undefined ? webhook.disabledReason : null,
            updatedAt: at
          },
          {
            secret: row.secret as Webhook.Secret,
            previousSecret: row.previous_secret as Webhook.Secret | null
          }
        )
      )
    }),
    rotateWebhookSecret: Effect.fnUntraced(function* (access, id, rotation) {
      const at = yield* now
      return yield* change(access, id, (row, webhook) =>
        rows.fromWebhook(
          { ...webhook, previousSecretExpiresAt: rotation.previousValidUntil, updatedAt: at },
          { secret: rotation.secret, previousSecret: row.secret as Webhook.Secret }
        )
      )
    }),
    deleteWebhook: (access, id) =>
      immediate(db, () =>
        Result.map(visible(sql.webhookById.get(id), access, "webhook", id), () => {
          sql.deleteWebhookDeliveries.run(id)
          sql.deleteWebhook.run(id)
        })
      )
  }
}
