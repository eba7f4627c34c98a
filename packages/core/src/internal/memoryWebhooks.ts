/**
 * The memory storage's feed, webhook endpoints and deliveries: the reference for what the SQL adapters
 * store. Every operation reads the clock first and then runs synchronously, so it is atomic to other fibers.
 */
import { Clock, DateTime, Effect, Result } from "effect"
import * as Access from "../Access.ts"
import * as Event from "../Event.ts"
import * as Id from "../Id.ts"
import type { Queries } from "../StorageDriver.ts"
import { Conflict, NotFound } from "../StorageError.ts"
import * as Webhook from "../Webhook.ts"

type Operations =
  | "readEvents"
  | "createWebhook"
  | "getWebhook"
  | "listWebhooks"
  | "updateWebhook"
  | "rotateWebhookSecret"
  | "deleteWebhook"
  | "fanOutEvents"
  | "pruneEvents"
  | "claimDeliveries"
  | "finishDeliveries"
  | "listDeliveries"
  | "getDelivery"
  | "redeliver"
  | "enqueuePing"

interface Endpoint {
  webhook: Webhook.Webhook
  secret: Webhook.Secret
  previousSecret: Webhook.Secret | null
}

interface StoredDelivery {
  readonly order: number
  delivery: Webhook.Delivery
  readonly body: string
  lease: { readonly owner: string; readonly claim: number; readonly expiresAt: DateTime.Utc } | null
  claims: number
}

/** The position an event cursor names: the number before any dot. */
export const positionOf = (cursor: Event.Cursor | null): number =>
  cursor === null ? 0 : Number(cursor.split(".")[0])

export const makeMemoryWebhooks = (
  feed: Array<Event.Stored | undefined>,
  serial: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
): Pick<Queries, Operations> => {
  const endpoints = new Map<Id.WebhookId, Endpoint>()
  const deliveries = new Map<Id.DeliveryId, StoredDelivery>()
  let fannedOut = 0
  let order = 0

  const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))
  const endpointOf = (access: Access.Access, id: Id.WebhookId): Result.Result<Endpoint, NotFound> => {
    const endpoint = endpoints.get(id)
    return endpoint !== undefined && Access.allows(access, endpoint.webhook.workspaceId)
      ? Result.succeed(endpoint)
      : Result.fail(NotFound.of("webhook", id))
  }
  const deliveryOf = (access: Access.Access, id: Id.DeliveryId): Result.Result<StoredDelivery, NotFound> => {
    const stored = deliveries.get(id)
    return stored !== undefined && Access.allows(access, stored.delivery.workspaceId)
      ? Result.succeed(stored)
      : Result.fail(NotFound.of("delivery", id))
  }
  const enqueue = (webhookId: Id.WebhookId, event: Event.Event, id: Id.DeliveryId, at: DateTime.Utc) => {
    const delivery: Webhook.Delivery = {
      id,
      webhookId,
      workspaceId: event.workspaceId,
      eventId: event.id,
      eventType: event.type,
      subject: event.subject,
      status: "pending",
      attempts: 0,
      lastAttemptAt: null,
      lastStatusCode: null,
      lastError: null,
      lastDurationMs: null,
      nextAttemptAt: at,
      createdAt: at,
      deliveredAt: null
    }
    deliveries.set(id, { order: ++order, delivery, body: Event.body(event), lease: null, claims: 0 })
    return delivery
  }
  const receives = (webhook: Webhook.Webhook, event: Event.Event) =>
    webhook.workspaceId === event.workspaceId &&
    (webhook.types.length === 0 || webhook.types.includes(event.type))

  /** Records one sender's attempt, or ends its lease when it has none, if its lease still holds. */
  const finish = ({ id, fence, attempt }: Webhook.FinishedDelivery): boolean => {
    const stored = deliveries.get(id)
    if (
      stored === undefined ||
      stored.delivery.status !== "pending" ||
      stored.lease?.owner !== fence.owner ||
      stored.lease.claim !== fence.claim
    ) {
      return false
    }
    stored.lease = null
    if (attempt === null) return true
    const { next } = attempt
    stored.delivery = {
      ...stored.delivery,
      status: next._tag === "Delivered" ? "delivered" : next._tag === "Failed" ? "failed" : "pending",
      attempts: stored.delivery.attempts + 1,
      lastAttemptAt: attempt.at,
      lastStatusCode: attempt.statusCode,
      lastError: attempt.error,
      lastDurationMs: attempt.durationMs,
      nextAttemptAt: next._tag === "Retry" ? next.at : null,
      deliveredAt: next._tag === "Delivered" ? attempt.at : null
    }
    const endpoint = endpoints.get(stored.delivery.webhookId)
    if (attempt.disable !== null && endpoint !== undefined) {
      endpoint.webhook = {
        ...endpoint.webhook,
        enabled: false,
        disabledReason: attempt.disable,
        updatedAt: attempt.at
      }
    }
    return true
  }

  return {
    readEvents: (access, read) =>
      Effect.sync(() => {
        const out: Array<Event.Stored> = []
        for (let i = positionOf(read.after); i < feed.length && out.length < read.limit; i++) {
          const event = feed[i]
          if (event === undefined || !Access.allows(access, event.workspaceId)) continue
          if (read.types !== null && !read.types.includes(event.type)) continue
          out.push(event)
        }
        return out
      }),

    createWebhook: Effect.fnUntraced(function* (access, input) {
      const at = yield* now
      const id = yield* Id.generate("whk")
      if (!Access.allows(access, input.workspaceId)) return yield* NotFound.of("workspace", input.workspaceId)
      const count = [...endpoints.values()].filter((e) => e.webhook.workspaceId === input.workspaceId).length
      if (count >= Webhook.maxPerWorkspace) {
        return yield* new Conflict({
          message: `a workspace has at most ${Webhook.maxPerWorkspace} webhooks`
        })
      }
      const webhook: Webhook.Webhook = {
        id,
        workspaceId: input.workspaceId,
        url: input.url,
        types: [...input.types],
        enabled: input.enabled,
        disabledReason: null,
        previousSecretExpiresAt: null,
        createdAt: at,
        updatedAt: at
      }
      endpoints.set(id, { webhook, secret: input.secret, previousSecret: null })
      return webhook
    }, serial),
    getWebhook: (access, id) => Effect.map(Effect.fromResult(endpointOf(access, id)), (e) => e.webhook),
    listWebhooks: (access, workspaceId) =>
      Effect.sync(() =>
        [...endpoints.values()]
          .map((endpoint) => endpoint.webhook)
          .filter(
            (webhook) =>
              Access.allows(access, webhook.workspaceId) &&
              (workspaceId === null || webhook.workspaceId === workspaceId)
          )
      ),
    updateWebhook: Effect.fnUntraced(function* (access, id, patch) {
      const at = yield* now
      const endpoint = yield* Effect.fromResult(endpointOf(access, id))
      endpoint.webhook = {
        ...endpoint.webhook,
        url: patch.url ?? endpoint.webhook.url,
        types: patch.types === undefined ? endpoint.webhook.types : [...patch.types],
        ...(patch.enabled === undefined ? {} : { enabled: patch.enabled, disabledReason: null }),
        updatedAt: at
      }
      return endpoint.webhook
    }, serial),
    rotateWebhookSecret: Effect.fnUntraced(function* (access, id, rotation) {
      const at = yield* now
      const endpoint = yield* Effect.fromResult(endpointOf(access, id))
      endpoint.previousSecret = endpoint.secret
      endpoint.secret = rotation.secret
      endpoint.webhook = {
        ...endpoint.webhook,
        previousSecretExpiresAt: rotation.previousValidUntil,
        updatedAt: at
      }
      return endpoint.webhook
    }, serial),
    deleteWebhook: Effect.fnUntraced(function* (access, id) {
      yield* Effect.fromResult(endpointOf(access, id))
      endpoints.delete(id)
      for (const [key, stored] of deliveries) if (stored.delivery.webhookId === id) deliveries.delete(key)
    }, serial),

    pruneEvents: (before, limit) =>
      serial(
        Effect.sync(() => {
          // Up to `limit` of each, as the SQL adapters do. Only events fan-out has passed: one not yet fanned
          // out still owes its deliveries.
          let events = 0
          for (let i = 0; i < fannedOut && events < limit; i++) {
            const event = feed[i]
            if (event === undefined || !DateTime.isLessThan(event.timestamp, before)) continue
            feed[i] = undefined
            events++
          }
          let gone = 0
          for (const [id, { delivery }] of deliveries) {
            if (gone >= limit) break
            if (delivery.status === "pending" || !DateTime.isLessThan(delivery.createdAt, before)) continue
            deliveries.delete(id)
            gone++
          }
          return events + gone
        })
      ),
    fanOutEvents: Effect.fnUntraced(function* (max) {
      const at = yield* now
      const nextId = yield* Id.generator("dlv")
      const moved = feed.slice(fannedOut, fannedOut + max)
      for (const event of moved) {
        if (event === undefined) continue
        for (const endpoint of endpoints.values()) {
          if (receives(endpoint.webhook, event)) enqueue(endpoint.webhook.id, event, nextId(), at)
        }
      }
      fannedOut += moved.length
      return moved.length
    }, serial),
    claimDeliveries: Effect.fnUntraced(function* (request) {
      const at = yield* now
      const due = ({ delivery }: StoredDelivery) =>
        delivery.nextAttemptAt === null || !DateTime.isGreaterThan(delivery.nextAttemptAt, at)
      const unleased = ({ lease }: StoredDelivery) =>
        lease === null || !DateTime.isGreaterThan(lease.expiresAt, at)
      // Each endpoint's pending deliveries per subject, in order: only the first may start a run.
      const subjects = new Map<string, Array<StoredDelivery>>()
      for (const stored of [...deliveries.values()].sort((a, b) => a.order - b.order)) {
        if (stored.delivery.status !== "pending") continue
        const key = `${stored.delivery.webhookId} ${stored.delivery.subject}`
        const pending = subjects.get(key)
        if (pending === undefined) subjects.set(key, [stored])
        else pending.push(stored)
      }
      const claimed: Array<Webhook.ClaimedDelivery> = []
      let runs = 0
      for (const [head, ...rest] of subjects.values()) {
        const endpoint = endpoints.get(head!.delivery.webhookId)
        if (runs >= request.max || endpoint === undefined || !endpoint.webhook.enabled) continue
        if (!due(head!) || !unleased(head!)) continue
        runs += 1
        const stop = rest.findIndex((stored) => !due(stored) || !unleased(stored))
        const run = [head!, ...(stop === -1 ? rest : rest.slice(0, stop))].slice(
          0,
          Math.max(1, request.perSubject ?? 1)
        )
        const previousValid =
          endpoint.previousSecret !== null &&
          endpoint.webhook.previousSecretExpiresAt !== null &&
          DateTime.isGreaterThan(endpoint.webhook.previousSecretExpiresAt, at)
        for (const stored of run) {
          stored.claims += 1
          stored.lease = {
            owner: request.owner,
            claim: stored.claims,
            expiresAt: DateTime.add(at, { milliseconds: request.leaseMs })
          }
          claimed.push({
            delivery: stored.delivery,
            fence: { owner: request.owner, claim: stored.claims },
            url: endpoint.webhook.url,
            secrets: previousValid ? [endpoint.secret, endpoint.previousSecret!] : [endpoint.secret],
            body: stored.body
          })
        }
      }
      return claimed
    }, serial),
    finishDeliveries: (finished) => serial(Effect.sync(() => finished.map(finish))),
    listDeliveries: (access, webhookId, read) =>
      Effect.flatMap(Effect.fromResult(endpointOf(access, webhookId)), () =>
        Effect.sync(() => {
          // A `before` that is not one of the endpoint's deliveries has nothing before it.
          const named = read.before === null ? undefined : deliveries.get(read.before)
          const below =
            read.before === null
              ? Number.POSITIVE_INFINITY
              : named?.delivery.webhookId === webhookId
                ? named.order
                : Number.NEGATIVE_INFINITY
          return [...deliveries.values()]
            .filter((stored) => stored.delivery.webhookId === webhookId && stored.order < below)
            .sort((a, b) => b.order - a.order)
            .slice(0, read.limit)
            .map((stored) => stored.delivery)
        })
      ),
    getDelivery: (access, id) => Effect.map(Effect.fromResult(deliveryOf(access, id)), (s) => s.delivery),
    redeliver: Effect.fnUntraced(function* (access, id) {
      const at = yield* now
      const stored = yield* Effect.fromResult(deliveryOf(access, id))
      stored.lease = null
      stored.delivery = { ...stored.delivery, status: "pending", nextAttemptAt: at, deliveredAt: null }
      return stored.delivery
    }, serial),
    enqueuePing: Effect.fnUntraced(function* (access, webhookId, event) {
      const at = yield* now
      const endpoint = yield* Effect.fromResult(endpointOf(access, webhookId))
      return enqueue(endpoint.webhook.id, event, yield* Id.generate("dlv"), at)
    }, serial)
  }
}
