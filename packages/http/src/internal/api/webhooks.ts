/**
 * `/api/webhooks`: a workspace's endpoints (their secret shown once, when made or rotated), and each
 * endpoint's deliveries, which can be sent again; a ping tests an endpoint.
 */
import { Event, Webhook } from "@kiln/core"
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { BadRequest, Conflict, Forbidden, NotFound } from "../../ApiError.ts"
import { Authorization, idParam, optionalText, Text } from "./contract.ts"

export const WebhookView = Webhook.Webhook
/** An endpoint as created or rotated: with its secret, shown this once. */
export const WebhookWithSecretView = Webhook.Webhook.mapFields((fields) => ({
  ...fields,
  secret: Webhook.Secret.annotate({
    description:
      "Verify each delivery's `webhook-signature` with it (any Standard Webhooks library takes it as it is). Shown only in this answer."
  })
}))
export const DeliveryView = Webhook.Delivery

/** The longest a rotated-out secret keeps signing deliveries: a week. */
export const maxPreviousValidSeconds = 7 * 24 * 60 * 60
export const defaultPreviousValidSeconds = 24 * 60 * 60

/** Where an endpoint is: bounded here, and judged by the host's address policy when it is set (`Webhook.checkUrl`). */
const UrlInput = Webhook.Url.annotate({
  description:
    "Where deliveries are POSTed: an http:// or https:// URL of at most 2048 characters, without credentials, whose host is not a loopback, private, link-local or metadata address unless the server allows them."
})

/** Event types, each at most once. */
const TypesInput = Schema.Array(Event.Type)
  .check(
    Schema.makeFilter((types) =>
      new Set(types).size === types.length ? undefined : "expected each event type at most once"
    )
  )
  .annotate({ description: "The event types it receives; every type when empty (the default)." })

export const maxDeliveriesPage = 100

const deliveryParams = { ...idParam, deliveryId: Text(100) }

export class WebhooksGroup extends HttpApiGroup.make("webhooks")
  .add(
    HttpApiEndpoint.post("create", "/webhooks", {
      payload: Schema.Struct({
        workspaceId: Text(100),
        url: UrlInput,
        types: Schema.optionalKey(TypesInput),
        enabled: Schema.optionalKey(Schema.Boolean)
      }),
      success: WebhookWithSecretView.pipe(HttpApiSchema.status(201)),
      error: [BadRequest, Forbidden, NotFound, Conflict]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Create a webhook endpoint",
        description: `Answers the endpoint with its \`secret\`, shown only here (and when rotated). A workspace has at most ${Webhook.maxPerWorkspace} endpoints (409 past that). The URL's host may not resolve to a loopback, private, link-local or metadata address unless the server allows them.`
      })
    ),
    HttpApiEndpoint.get("list", "/webhooks", {
      query: {
        workspace_id: optionalText(100, "Endpoints of this workspace (404 for one the token cannot see).")
      },
      success: Schema.Struct({ data: Schema.Array(WebhookView) }),
      error: [NotFound]
    }),
    HttpApiEndpoint.get("get", "/webhooks/:id", { params: idParam, success: WebhookView, error: NotFound }),
    HttpApiEndpoint.patch("update", "/webhooks/:id", {
      params: idParam,
      payload: Schema.Struct({
        url: Schema.optionalKey(UrlInput),
        types: Schema.optionalKey(TypesInput),
        enabled: Schema.optionalKey(
          Schema.Boolean.annotate({
            description:
              "Enabling an endpoint Kiln disabled clears its `disabledReason`; its backlog is then sent."
          })
        )
      }),
      success: WebhookView,
      error: [BadRequest, Forbidden, NotFound]
    }),
    HttpApiEndpoint.delete("delete", "/webhooks/:id", {
      params: idParam,
      success: HttpApiSchema.NoContent,
      error: [Forbidden, NotFound]
    }),
    HttpApiEndpoint.post("rotateSecret", "/webhooks/:id/rotate-secret", {
      params: idParam,
      // The body is optional (read as null): the secret it replaces then stays valid for a day.
      payload: [
        Schema.Struct({
          previousValidForSeconds: Schema.optionalKey(
            Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: maxPreviousValidSeconds })).annotate({
              description: `How long the replaced secret keeps signing deliveries beside the new one, 0–${maxPreviousValidSeconds} s (default ${defaultPreviousValidSeconds}).`
            })
          )
        }),
        Schema.Null
      ],
      success: WebhookWithSecretView,
      error: [Forbidden, NotFound]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Rotate an endpoint's secret",
        description:
          "Answers the endpoint with its new `secret`, shown only here. Until `previousSecretExpiresAt`, each delivery carries two signatures, one with each secret, so receivers can switch at their own pace."
      })
    ),
    HttpApiEndpoint.get("deliveries", "/webhooks/:id/deliveries", {
      params: idParam,
      query: {
        before: optionalText(100, "A delivery id: the page of older deliveries after it."),
        limit: optionalText(8, `Deliveries per page, 1–${maxDeliveriesPage} (default ${maxDeliveriesPage}).`)
      },
      success: Schema.Struct({ data: Schema.Array(DeliveryView) }),
      error: [BadRequest, NotFound]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "An endpoint's deliveries, newest first",
        description:
          "Each with its status, attempts, the receiver's last status code, error and duration, and when it is tried next. For older ones, pass the last id as `before`."
      })
    ),
    HttpApiEndpoint.post("redeliver", "/webhooks/:id/deliveries/:deliveryId/redeliver", {
      params: deliveryParams,
      success: DeliveryView.pipe(HttpApiSchema.status(202)),
      error: [Forbidden, NotFound]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Send a delivery again",
        description:
          "Makes it pending and due now, with the same event, body and `webhook-id`; its attempts so far are kept."
      })
    ),
    HttpApiEndpoint.post("ping", "/webhooks/:id/ping", {
      params: idParam,
      success: DeliveryView.pipe(HttpApiSchema.status(202)),
      error: [Forbidden, NotFound]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Test an endpoint",
        description:
          "Queues a `ping` event for this endpoint alone (it is not in the feed) and answers its delivery."
      })
    )
  )
  .middleware(Authorization)
  .prefix("/api") {}
