/**
 * Webhook deliveries on SQLite: fan-out from the feed, leases to senders fenced like builds' (an owner and
 * a claim number), and the delivery log. Every write is one IMMEDIATE transaction, so processes sharing the
 * file take turns: fan-out by one process at a time, and a delivery leased to one sender at a time.
 */
import { type Access, Event, Id, type Storage } from "@kiln/core"
import { SqlRows as rows, type StorageDriver } from "@kiln/core/adapter"
import { DateTime, Effect, Result } from "effect"
import { attempt, type Connection, immediate, snapshot } from "./connection.ts"
import { maxPosition } from "./events.ts"
import type { Statements } from "./statements.ts"
import { visible } from "./visible.ts"

type DeliveryQueries = Pick<
  StorageDriver.Queries,
  | "fanOutEvents"
  | "pruneEvents"
  | "claimDeliveries"
  | "finishDeliveries"
  | "listDeliveries"
  | "getDelivery"
  | "redeliver"
  | "enqueuePing"
>

/** The endpoints of a workspace that receive each type: all of their types, or every type when none. */
const endpointsOf = (webhooks: ReadonlyArray<rows.WebhookRow>) =>
  webhooks.map((row) => {
    const types = new Set(rows.toWebhook(row).types)
    return { id: row.id, receives: (type: Event.Type) => types.size === 0 || types.has(type) }
  })

export const makeDeliveryQueries = (
  db: Connection,
  sql: Statements,
  now: Effect.Effect<DateTime.Utc>
): DeliveryQueries => {
  const visibleWebhook = (access: Access.Access, id: Id.WebhookId) =>
    visible(sql.webhookById.get(id), access, "webhook", id)

  return {
    pruneEvents: (before, limit) =>
      immediate(db, () => {
        const at = DateTime.toEpochMillis(before)
        return Result.succeed(
          sql.pruneEvents.run(at, limit).changes + sql.pruneDeliveries.run(at, limit).changes
        )
      }),
    // The cursor row is read and moved in the transaction that inserts the deliveries: the write lock makes
    // calls from any process take turns, each moving past the events the one before left.
    fanOutEvents: Effect.fnUntraced(function* (max) {
      const at = yield* now
      const nextId = yield* Id.generator("dlv")
      return yield* immediate(db, () => {
        const events = sql.eventsToFanOut.all(Math.max(0, max))
        if (events.length === 0) return Result.succeed(0)
        const endpoints = new Map<string, ReturnType<typeof endpointsOf>>()
        for (const row of events) {
          let workspace = endpoints.get(row.workspace_id)
          if (workspace === undefined) {
            workspace = endpointsOf(sql.workspaceWebhooks.all(row.workspace_id))
            endpoints.set(row.workspace_id, workspace)
          }
          const receiving = workspace.filter((endpoint) => endpoint.receives(row.type as Event.Type))
          if (receiving.length === 0) continue
          const event = rows.toEvent(row)
          const body = Event.body(event)
          for (const endpoint of receiving) {
            sql.insertDelivery.run(rows.newDelivery(nextId(), endpoint.id as Id.WebhookId, event, body, at))
          }
        }
        sql.moveFanOut.run(events.at(-1)!.position)
        return Result.succeed(events.length)
      })
    }),

    claimDeliveries: (request) =>
      Effect.flatMap(now, (at) =>
        immediate(db, () => {
          const nowMs = DateTime.toEpochMillis(at)
          const perSubject = Math.max(1, request.perSubject ?? 1)
          const claimable = sql.claimableDeliveries.all({ now: nowMs, max: Math.max(0, request.max) })
          return Result.succeed(
            claimable.flatMap((first) => {
              const later =
                perSubject === 1
                  ? []
                  : sql.pendingAfter.all({
                      webhook: first.webhook_id,
                      subject: first.subject,
                      after: first.position,
                      limit: perSubject - 1
                    })
              // The run ends before the first that is not due yet or is leased.
              const stop = later.findIndex(
                (row) =>
                  (row.next_attempt_at ?? 0) > nowMs ||
                  (row.lease_expires_at !== null && row.lease_expires_at > nowMs)
              )
              const secrets = rows.webhookSecrets(first, nowMs)
              return [first, ...(stop === -1 ? later : later.slice(0, stop))].map((row) => {
                const leased = sql.leaseDelivery.get(request.owner, nowMs + request.leaseMs, row.position)!
                return {
                  delivery: rows.toDelivery(row),
                  fence: { owner: request.owner, claim: leased.lease_claim },
                  url: first.url,
                  secrets,
                  body: row.body
                }
              })
            })
          )
        })
      ),

    finishDeliveries: (finished) =>
      immediate(db, () =>
        Result.succeed(
          finished.map(({ id, fence, attempt }) => {
            const lease = { id, owner: fence.owner, claim: fence.claim }
            if (attempt === null) return sql.releaseDelivery.run(lease).changes > 0
            const row = sql.finishDelivery.get({ ...rows.attemptColumns(attempt), ...lease })
            if (row === undefined) return false
            if (attempt.disable !== null) {
              sql.disableWebhook.run(attempt.disable, DateTime.toEpochMillis(attempt.at), row.webhook_id)
            }
            return true
          })
        )
      ),

    // A `before` that is not one of the endpoint's deliveries has nothing before it.
    listDeliveries: (access, webhookId, read) =>
      snapshot(db, () =>
        Result.map(visibleWebhook(access, webhookId), () => {
          const below =
            read.before === null ? maxPosition : sql.deliveryPosition.get(read.before, webhookId)?.position
          return below === undefined
            ? []
            : sql.webhookDeliveries
                .all({ webhook: webhookId, below: BigInt(below), limit: Math.max(0, read.limit) })
                .map(rows.toDelivery)
        })
      ),

    getDelivery: (access, id) =>
      Effect.flatMap(
        attempt(() => sql.deliveryById.get(id)),
        (row) => Effect.fromResult(Result.map(visible(row, access, "delivery", id), rows.toDelivery))
      ),

    redeliver: (access, id) =>
      Effect.flatMap(now, (at) =>
        immediate(db, () =>
          Result.map(visible(sql.deliveryById.get(id), access, "delivery", id), () =>
            rows.toDelivery(sql.redeliver.get(DateTime.toEpochMillis(at), id)!)
          )
        )
      ),

    enqueuePing: Effect.fnUntraced(function* (access, webhookId, event) {
      const at = yield* now
      const id = yield* Id.generate("dlv")
      return yield* immediate(
        db,
        (): Result.Result<rows.DeliveryRow, Storage.NotFound> =>
          Result.map(visibleWebhook(access, webhookId), () => {
            const row = rows.newDelivery(id, webhookId, event, Event.body(event), at)
            sql.insertDelivery.run(row)
            return row
          })
      ).pipe(Effect.map(rows.toDelivery))
    })
  }
}
