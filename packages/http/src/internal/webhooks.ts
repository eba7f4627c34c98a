/**
 * `/api/webhooks`: endpoints per workspace and their deliveries. Reading needs any token of the
 * workspace; changing anything (an endpoint, its secret, a delivery sent again, a ping) needs the write
 * role. An endpoint's secret is made here, answered once, and never shown again.
 */
import { Event, Id, Storage, Webhook } from "@kiln/core"
import { DateTime, Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal, KilnApi } from "../Api.ts"
import * as ApiError from "../ApiError.ts"
import { defaultPreviousValidSeconds, maxDeliveriesPage } from "./api/webhooks.ts"
import { requireRole } from "./authorization.ts"
import { fromStorage, fromStorageWrite } from "./errors.ts"
import { canonicalId, idOf } from "./ids.ts"
import { positiveIntParam } from "./queryParams.ts"
import { narrowedTo } from "./workspaces.ts"

const newSecret = Effect.sync(Webhook.generateSecret)

const webhookId = (text: string) => fromStorage(canonicalId("whk", text))

export const layer = HttpApiBuilder.group(KilnApi, "webhooks", (handlers) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    // The host's address policy, read where the host provides it, as the engine that sends reads it.
    const addresses = yield* Webhook.Addresses
    /** The URL as it is stored, or a 400 that says why it cannot be an endpoint. */
    const urlOf = (url: string) =>
      Webhook.checkUrl(url).pipe(
        Effect.provideService(Webhook.Addresses, addresses),
        Effect.mapError((error) => ApiError.badRequest("invalid_request", `payload.url: ${error.message}`))
      )
    return handlers
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("write")
          // It must exist, not only be in scope: an all-workspaces token's scope holds any id.
          const workspace = yield* fromStorage(
            Effect.flatMap(canonicalId("wsp", payload.workspaceId), (id) =>
              storage.getWorkspace(principal.access, id)
            )
          )
          const url = yield* urlOf(payload.url)
          const secret = yield* newSecret
          const webhook = yield* fromStorageWrite(
            storage.createWebhook(principal.access, {
              workspaceId: workspace.id,
              url,
              types: payload.types ?? [],
              enabled: payload.enabled ?? true,
              secret
            })
          )
          return { ...webhook, secret }
        })
      )
      .handle("list", ({ query }) =>
        Effect.gen(function* () {
          const principal = yield* Effect.service(CurrentPrincipal)
          const access = yield* narrowedTo(storage, principal.access, query.workspace_id)
          return { data: yield* Effect.orDie(storage.listWebhooks(access, null)) }
        })
      )
      .handle("get", ({ params }) =>
        Effect.flatMap(Effect.service(CurrentPrincipal), (principal) =>
          Effect.flatMap(webhookId(params.id), (id) => fromStorage(storage.getWebhook(principal.access, id)))
        )
      )
      .handle("update", ({ params, payload }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("write")
          const url = payload.url === undefined ? undefined : yield* urlOf(payload.url)
          const id = yield* webhookId(params.id)
          return yield* fromStorage(storage.updateWebhook(principal.access, id, { ...payload, url }))
        })
      )
      .handle("delete", ({ params }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("write")
          yield* fromStorage(storage.deleteWebhook(principal.access, yield* webhookId(params.id)))
        })
      )
      .handle("rotateSecret", ({ params, payload }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("write")
          const id = yield* webhookId(params.id)
          const seconds = payload?.previousValidForSeconds ?? defaultPreviousValidSeconds
          const secret = yield* newSecret
          const previousValidUntil = DateTime.add(yield* DateTime.now, { seconds })
          const webhook = yield* fromStorage(
            storage.rotateWebhookSecret(principal.access, id, { secret, previousValidUntil })
          )
          return { ...webhook, secret }
        })
      )
      .handle("deliveries", ({ params, query }) =>
        Effect.gen(function* () {
          const principal = yield* Effect.service(CurrentPrincipal)
          const before =
            query.before === undefined
              ? null
              : (idOf("dlv", query.before) ??
                (yield* ApiError.badRequest(
                  "invalid_parameter",
                  "before: expected a delivery id, the `id` of a delivery of this webhook"
                )))
          const limit = yield* positiveIntParam("limit", query.limit, maxDeliveriesPage, maxDeliveriesPage)
          const id = yield* webhookId(params.id)
          return { data: yield* fromStorage(storage.listDeliveries(principal.access, id, { before, limit })) }
        })
      )
      .handle("redeliver", ({ params }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("write")
          const id = yield* webhookId(params.id)
          // A delivery of another endpoint is not found under this one, as a missing one is not.
          const deliveryId = yield* fromStorage(
            Effect.filterOrFail(
              Effect.flatMap(canonicalId("dlv", params.deliveryId), (deliveryId) =>
                storage.getDelivery(principal.access, deliveryId)
              ),
              (delivery) => delivery.webhookId === id,
              () => Storage.NotFound.of("delivery", params.deliveryId)
            ).pipe(Effect.map((delivery) => delivery.id))
          )
          return yield* fromStorage(storage.redeliver(principal.access, deliveryId))
        })
      )
      .handle("ping", ({ params }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("write")
          const webhook = yield* fromStorage(
            storage.getWebhook(principal.access, yield* webhookId(params.id))
          )
          const event = Event.ping(
            yield* Id.generate("msg"),
            webhook.workspaceId,
            webhook.id,
            yield* DateTime.now
          )
          return yield* fromStorage(storage.enqueuePing(principal.access, webhook.id, event))
        })
      )
  })
)
