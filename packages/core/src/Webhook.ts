/**
 * Webhook endpoints and their deliveries (DESIGN.md §11). An endpoint receives its workspace's events of
 * the types it names, signed as Standard Webhooks says; each event becomes one delivery per endpoint,
 * retried with backoff until it is delivered or its attempts run out, and kept in order per subject (a
 * build) for each endpoint. Storage keeps both and leases deliveries to one sender at a time, fenced like
 * builds.
 */
import { Context, type DateTime, Effect, Result, Schema } from "effect"
import * as Event from "./Event.ts"
import { DeliveryId, EventId, WebhookId, WorkspaceId } from "./Id.ts"
import * as AddressPolicy from "./internal/webhooks/addressPolicy.ts"
import { generateSecret as generate } from "./internal/webhooks/sign.ts"
import * as WebhookUrl from "./internal/webhooks/webhookUrl.ts"

export type { RetrySchedule } from "./internal/webhooks/retrySchedule.ts"

/**
 * Which addresses webhooks may be sent to, for the whole host. By default every loopback, private,
 * link-local, metadata and reserved address is refused, when a URL is saved and again at every
 * connection (a name that resolves to one is refused too). A host whose receivers run beside it sets
 * `allowPrivate`, or names exactly what it permits in `allow`.
 */
export interface AddressOptions {
  /** Permits loopback, private and shared (CGNAT) addresses; link-local and metadata stay refused. */
  readonly allowPrivate?: boolean | undefined
  /** CIDRs or addresses permitted whatever rule they fall under (`10.1.0.0/16`, `fd00::/8`). */
  readonly allow?: ReadonlyArray<string> | undefined
}

export const Addresses = Context.Reference<AddressOptions>("@kiln/core/Webhook/Addresses", {
  defaultValue: () => ({})
})

/** A URL that may not be a webhook endpoint, with why. */
export class InvalidUrl extends Schema.TaggedError<InvalidUrl>()("InvalidWebhookUrl", {
  message: Schema.String
}) {}

/** The policy the host's `Addresses` make; an `allow` entry that is no CIDR is a defect of the host's setup. */
export const policy: Effect.Effect<AddressPolicy.AddressPolicy> = Effect.gen(function* () {
  const options = yield* Addresses
  const made = AddressPolicy.make({ allowPrivate: options.allowPrivate ?? false, allow: options.allow ?? [] })
  if (Result.isFailure(made)) return yield* Effect.die(new Error(`Webhook.Addresses: ${made.failure}`))
  return made.success
})

/** The URL as it will be stored and sent to, when the host's policy lets it be an endpoint. */
export const checkUrl = (url: string): Effect.Effect<string, InvalidUrl> =>
  Effect.flatMap(policy, (addresses) =>
    Result.match(WebhookUrl.check(url, addresses), {
      onFailure: (message) => Effect.fail(new InvalidUrl({ message })),
      onSuccess: (parsed) => Effect.succeed(parsed.href)
    })
  )

/** A new random secret (`whsec_` and 32 bytes), shown to the caller once. */
export const generateSecret = (): Secret => Schema.decodeSync(Secret)(generate())

/** How many endpoints one workspace may have. */
export const maxPerWorkspace = 20

/** `whsec_` and the base64 of the key, as Standard Webhooks libraries read it. */
export const Secret = Schema.String.check(
  Schema.isPattern(/^whsec_[A-Za-z0-9+/]{32,128}={0,2}$/, { expected: "a secret of the form whsec_<base64>" })
).pipe(Schema.brand("WebhookSecret"))
export type Secret = typeof Secret.Type

export const Url = Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(2048))

export const Webhook = Schema.Struct({
  id: WebhookId,
  workspaceId: WorkspaceId,
  url: Url,
  /** The event types it receives; every type when empty. */
  types: Schema.Array(Event.Type),
  enabled: Schema.Boolean,
  /** Why Kiln disabled it (it answered 410, or kept failing); null when enabled or disabled by a caller. */
  disabledReason: Schema.NullOr(Schema.String),
  /** Until when deliveries are also signed with the secret before the last rotation. */
  previousSecretExpiresAt: Schema.NullOr(Schema.DateTimeUtc),
  createdAt: Schema.DateTimeUtc,
  updatedAt: Schema.DateTimeUtc
})
export type Webhook = typeof Webhook.Type

export interface NewWebhook {
  readonly workspaceId: WorkspaceId
  readonly url: string
  readonly types: ReadonlyArray<Event.Type>
  readonly enabled: boolean
  readonly secret: Secret
}

/** The fields a caller changes; enabling clears `disabledReason`. */
export interface WebhookPatch {
  readonly url?: string | undefined
  readonly types?: ReadonlyArray<Event.Type> | undefined
  readonly enabled?: boolean | undefined
}

/** A new secret; the one it replaces still signs deliveries until `previousValidUntil`. */
export interface Rotation {
  readonly secret: Secret
  readonly previousValidUntil: DateTime.Utc
}

export const DeliveryStatus = Schema.Literals(["pending", "delivered", "failed"])
export type DeliveryStatus = typeof DeliveryStatus.Type

export const Delivery = Schema.Struct({
  id: DeliveryId,
  webhookId: WebhookId,
  workspaceId: WorkspaceId,
  /** The `webhook-id` of every attempt. */
  eventId: EventId,
  eventType: Event.Type,
  subject: Schema.String,
  status: DeliveryStatus,
  attempts: Schema.Int,
  lastAttemptAt: Schema.NullOr(Schema.DateTimeUtc),
  /** The receiver's HTTP status at the last attempt; null when it did not answer. */
  lastStatusCode: Schema.NullOr(Schema.Int),
  /** Why the last attempt failed, when it did. */
  lastError: Schema.NullOr(Schema.String),
  lastDurationMs: Schema.NullOr(Schema.Int),
  /** When the next attempt is due; null unless pending. */
  nextAttemptAt: Schema.NullOr(Schema.DateTimeUtc),
  createdAt: Schema.DateTimeUtc,
  deliveredAt: Schema.NullOr(Schema.DateTimeUtc)
})
export type Delivery = typeof Delivery.Type

/** Who holds a claimed delivery, as for builds: the sender process and the claim number. */
export interface DeliveryFence {
  readonly owner: string
  readonly claim: number
}

export interface DeliveryClaimRequest {
  readonly owner: string
  readonly leaseMs: number
  /** The most subjects leased: each brings its first pending delivery to an endpoint, and its run. */
  readonly max: number
  /**
   * The most deliveries of one subject to one endpoint leased together, in order, for one sender to send
   * one after another: the first pending one, then those after it while each is due and not leased.
   * Default 1.
   */
  readonly perSubject?: number | undefined
}

/** A delivery leased to one sender, with what sending it needs. */
export interface ClaimedDelivery {
  readonly delivery: Delivery
  readonly fence: DeliveryFence
  readonly url: string
  /** The current secret first, then the previous one while it is still valid. */
  readonly secrets: ReadonlyArray<Secret>
  /** The request body, the same on every attempt (`Event.body`). */
  readonly body: string
}

/** An attempt's result, as the sender records it. */
export interface Attempt {
  readonly at: DateTime.Utc
  readonly statusCode: number | null
  readonly durationMs: number | null
  readonly error: string | null
  /** Delivered; retry at a time; or failed for good. */
  readonly next:
    | { readonly _tag: "Delivered" }
    | { readonly _tag: "Retry"; readonly at: DateTime.Utc }
    | { readonly _tag: "Failed" }
  /** Disables the endpoint with this reason (410 Gone, or failing for too long); its backlog stays. */
  readonly disable: string | null
}

/**
 * A sender's attempt at a delivery it leased under `fence`, to record; or, when `attempt` is null, the
 * lease given back unsent (the run it came in stopped before it), so that the delivery is due again at once.
 */
export interface FinishedDelivery {
  readonly id: DeliveryId
  readonly fence: DeliveryFence
  readonly attempt: Attempt | null
}

/** A page of an endpoint's deliveries, newest first: those before `before` (from the newest when null). */
export interface DeliveryRead {
  readonly before: DeliveryId | null
  readonly limit: number
}
