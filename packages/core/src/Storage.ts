/**
 * Storage is all of Kiln's persistence, and the only place that enforces the build state machine at
 * write time (DESIGN.md §3). Every adapter implements this one service and proves it with the
 * conformance suites in `@kiln/core/testing`; `Storage.layerMemory` is the reference.
 */
import { Context, type DateTime, type Effect, Layer, type Option, type Scope, type Stream } from "effect"
import type { Access } from "./Access.ts"
import type { ApiToken, NewToken } from "./ApiToken.ts"
import type { App, NewApp } from "./App.ts"
import type { AppVersion, NewAppVersion, Resolution } from "./AppVersion.ts"
import type { Bootstrapped, NewBootstrap } from "./Bootstrap.ts"
import type { Build, BuildStep, BuildWithSteps, NewBuild } from "./Build.ts"
import type { BuildEvent, Fence, InvalidTransition, LeaseLost } from "./BuildState.ts"
import type { Change } from "./Change.ts"
import type { ClaimRequest } from "./Claim.ts"
import type * as Event from "./Event.ts"
import type {
  AppField,
  AppVersionField,
  BuildField,
  TokenField,
  TriggerField,
  WorkspaceField
} from "./Fields.ts"
import type {
  AppId,
  AppVersionId,
  BuildId,
  DeliveryId,
  SourceEventId,
  TokenId,
  TriggerId,
  WebhookId,
  WorkspaceId
} from "./Id.ts"
import { makeMemoryStorage } from "./internal/memoryStorage.ts"
import type { Budget, LogSequenceGap } from "./LogBudget.ts"
import type { LogLine, LogPage } from "./LogLine.ts"
import type { ListQuery, ListResult } from "./Query.ts"
import type { NewSourceEvent, SourceEvent } from "./SourceEvent.ts"
import type { Conflict, NotFound, StorageError } from "./StorageError.ts"
import type { NewTrigger, Trigger, TriggerPatch } from "./Trigger.ts"
import type * as Webhook from "./Webhook.ts"
import type { NewWorkspace, Workspace } from "./Workspace.ts"

export { buildChanged, type Change } from "./Change.ts"
export { Conflict, NotFound, StorageError, StorageErrorReason } from "./StorageError.ts"

/** Which logs `expireLogs` expires: of stopped builds of the app that stopped before the cut-off. */
export interface LogExpiry {
  readonly appId: AppId
  readonly stoppedBefore: DateTime.Utc
  readonly limit: number
}

/** Which builds `deleteBuilds` deletes: stopped builds of the app beyond its newest `keep`, or created before the cut-off. */
export interface BuildDeletion {
  readonly appId: AppId
  /** By sequence number, counting every build of the app, queued and running ones too; `null`: no count. */
  readonly keep: number | null
  readonly createdBefore: DateTime.Utc | null
  readonly limit: number
}

export interface StorageOptions {
  readonly logBudget?: Budget | undefined
}

type E<A, Errors = never> = Effect.Effect<A, Errors | StorageError>

// Lists answer a `ListQuery` over the entity's fields (parsed and checked by `Query.fromParams`, or
// `Query.first(n)`) within the caller's scope, with exact page information; `Query.toPage` then signs the
// cursors.

export interface StorageShape {
  /** A cheap round trip to the store, for readiness checks: succeeds once the store answers. */
  readonly ping: E<void>
  readonly createWorkspace: (input: NewWorkspace) => E<Workspace>
  readonly getWorkspace: (access: Access, id: WorkspaceId) => E<Workspace, NotFound>
  readonly listWorkspaces: (access: Access, query: ListQuery<WorkspaceField>) => E<ListResult<Workspace>>

  /** Fails with `Conflict` when the handle is taken in the workspace. */
  readonly createApp: (access: Access, input: NewApp) => E<App, NotFound | Conflict>
  readonly getApp: (access: Access, id: AppId) => E<App, NotFound>
  readonly listApps: (access: Access, query: ListQuery<AppField>) => E<ListResult<App>>

  /** A git source with a `commitSha` is ready at once; a ref or an archive waits for `resolveAppVersion`. */
  readonly createAppVersion: (access: Access, input: NewAppVersion) => E<AppVersion, NotFound>
  /** Makes a pending version ready or failed; a version that is not pending is a `Conflict`. */
  readonly resolveAppVersion: (
    access: Access,
    id: AppVersionId,
    resolution: Resolution
  ) => E<AppVersion, NotFound | Conflict>
  readonly getAppVersion: (access: Access, id: AppVersionId) => E<AppVersion, NotFound>
  readonly listAppVersions: (access: Access, query: ListQuery<AppVersionField>) => E<ListResult<AppVersion>>

  /** A trigger of an app, in the app's workspace. */
  readonly createTrigger: (access: Access, input: NewTrigger) => E<Trigger, NotFound>
  /** Deleted triggers too: the builds they made still show them. */
  readonly getTrigger: (access: Access, id: TriggerId) => E<Trigger, NotFound>
  readonly listTriggers: (access: Access, query: ListQuery<TriggerField>) => E<ListResult<Trigger>>
  /** Changes the given fields; a deleted trigger is a `Conflict`. */
  readonly updateTrigger: (
    access: Access,
    id: TriggerId,
    patch: TriggerPatch
  ) => E<Trigger, NotFound | Conflict>
  /** Marks the trigger deleted (it never matches again); deleting twice keeps the first time. */
  readonly deleteTrigger: (access: Access, id: TriggerId) => E<Trigger, NotFound>
  /** The live triggers of a workspace, for evaluating a push: every one, oldest first. */
  readonly activeTriggers: (access: Access, workspaceId: WorkspaceId) => E<ReadonlyArray<Trigger>>

  /** Stores an event once per `(workspaceId, deliveryId)`; a redelivery returns the stored one. */
  readonly recordSourceEvent: (
    access: Access,
    input: NewSourceEvent
  ) => E<{ readonly event: SourceEvent; readonly created: boolean }, NotFound>
  readonly getSourceEvent: (access: Access, id: SourceEventId) => E<SourceEvent, NotFound>

  /** Stores a token by the hash of its secret; every named workspace must exist. */
  readonly createToken: (input: NewToken) => E<ApiToken, NotFound>
  /** The token whose secret hashes to `tokenHash`, revoked or expired ones included. */
  readonly findTokenByHash: (tokenHash: string) => E<Option.Option<ApiToken>>
  readonly getToken: (access: Access, id: TokenId) => E<ApiToken, NotFound>
  readonly listTokens: (access: Access, query: ListQuery<TokenField>) => E<ListResult<ApiToken>>
  /** Revoking twice keeps the first revocation time. */
  readonly revokeToken: (access: Access, id: TokenId) => E<ApiToken, NotFound>
  /**
   * The first start's workspace and admin token, made once: when no token exists (revoked ones count),
   * stores the token over every workspace, in the oldest workspace or a new one, and answers `Issued`;
   * otherwise changes nothing and answers `Existing`. Calls at the same moment, from any number of
   * processes sharing the database, take turns, so exactly one of them is told `Issued`.
   */
  readonly bootstrap: (input: NewBootstrap) => E<Bootstrapped>

  /**
   * Creates a build of a ready app version with the app's next `sequenceNumber` (gapless, from 1).
   * Idempotent: the same `(app, sourceEventId)`, or the same `idempotencyKey` in a workspace, gives the
   * build created the first time; a key reused for another version is a `Conflict`.
   */
  readonly createBuild: (access: Access, input: NewBuild) => E<Build, NotFound | Conflict>
  readonly getBuild: (access: Access, id: BuildId) => E<BuildWithSteps, NotFound>
  readonly listBuilds: (access: Access, query: ListQuery<BuildField>) => E<ListResult<Build>>

  /** Claims queued builds, oldest first, within the request's caps; each becomes `initializing`. */
  readonly claimNext: (request: ClaimRequest) => E<ReadonlyArray<Build>>
  /** Extends the lease of a claimed build from the storage's clock; the build shows any cancel request. */
  readonly heartbeat: (id: BuildId, fence: Fence, leaseMs: number) => E<Build, NotFound | LeaseLost>
  /** Applies an event with compare-and-set on the stored phase and fence. */
  readonly transition: (id: BuildId, event: BuildEvent) => E<Build, NotFound | InvalidTransition | LeaseLost>
  /**
   * Cancels a queued build at once, or records the request on a claimed one for its owner to act on.
   * `accepted` is false when the build had already stopped.
   */
  readonly requestCancel: (
    access: Access,
    id: BuildId,
    reason: string | null
  ) => E<{ readonly build: Build; readonly accepted: boolean }, NotFound>
  /**
   * Stops every claimed build whose lease has expired: `lost`, or `cancelled` if a cancel was pending. In
   * the same write, each one's log gets `BuildState.reapedLine` as its next line (within the log budget,
   * like every append), so the log says what became of the build; a build is reaped, and so told, once.
   */
  readonly reapExpired: () => E<ReadonlyArray<Build>>

  /** Inserts or replaces the step with the same index; fenced like every owner write. */
  readonly recordStep: (id: BuildId, fence: Fence, step: BuildStep) => E<void, NotFound | LeaseLost>
  /**
   * Appends lines in seq order, continuing the build's sequence. Lines already stored are skipped, so a
   * retried batch is a no-op; fenced like every owner write.
   */
  readonly appendLogs: (
    id: BuildId,
    fence: Fence,
    lines: ReadonlyArray<LogLine>
  ) => E<void, NotFound | LeaseLost | LogSequenceGap>
  /**
   * An owner's log lines and then state changes, as one write where the storage can make it one (one
   * statement on PostgreSQL): the lines (there may be none) are appended as by `appendLogs`, and only once
   * they are stored the events are applied in turn as by `transition`; answers the last state. An engine
   * writes a build's lines and state changes this way, so a short build's whole record (`Started`, its
   * lines, its final state) can be one write.
   */
  readonly appendAndTransition: (
    id: BuildId,
    fence: Fence,
    lines: ReadonlyArray<LogLine>,
    events: readonly [BuildEvent, ...Array<BuildEvent>]
  ) => E<Build, NotFound | LeaseLost | LogSequenceGap | InvalidTransition>
  /**
   * Lines with seq after `afterSeq`, in order, at most `limit`, with the truncation line where lines were
   * dropped; none, with `expiredAt`, once retention expired the log.
   */
  readonly readLogs: (access: Access, id: BuildId, afterSeq: number, limit: number) => E<LogPage, NotFound>

  /**
   * Retention: deletes the log lines of up to `limit` stopped builds that `request` names and whose logs
   * have not expired yet, marking each log expired, with a `build.logs_expired` event each in the same
   * transaction. Answers those builds (none once there are no more); skips builds another write holds.
   */
  readonly expireLogs: (request: LogExpiry) => E<ReadonlyArray<Build>>
  /**
   * Retention: deletes up to `limit` of the stopped builds `request` names, oldest first, with their steps
   * and logs, with a `build.deleted` event each in the same transaction. A version whose builds are then all
   * gone is deleted too, unless it is its app's newest. Answers the builds deleted.
   */
  readonly deleteBuilds: (request: BuildDeletion) => E<ReadonlyArray<Build>>
  /**
   * Retention: deletes up to `limit` feed events, and webhook deliveries no longer pending, from before
   * `before`; answers how many rows it deleted. Events not yet fanned out to webhooks are kept.
   */
  readonly pruneEvents: (before: DateTime.Utc, limit: number) => E<number>
  /**
   * Takes the named lease for `owner` for `ms` on the store's clock, or renews it: true when `owner`
   * holds it now. Across processes sharing the store, one owner at a time holds a name.
   */
  readonly takeLease: (name: string, owner: string, ms: number) => E<boolean>

  /**
   * The feed: events of the caller's workspaces after the cursor, in feed order, at most `limit`. The order
   * never changes and nothing is ever inserted before an event already read, so a reader that resumes from
   * the last cursor it saw misses nothing and sees nothing twice. Events are written by the lifecycle
   * operations (and `createAppVersion`/`resolveAppVersion`) in the transaction of their change.
   */
  readonly readEvents: (access: Access, read: Event.Read) => E<ReadonlyArray<Event.Stored>>

  /** Fails with `Conflict` past `Webhook.maxPerWorkspace` endpoints in the workspace. */
  readonly createWebhook: (
    access: Access,
    input: Webhook.NewWebhook
  ) => E<Webhook.Webhook, NotFound | Conflict>
  readonly getWebhook: (access: Access, id: WebhookId) => E<Webhook.Webhook, NotFound>
  /** The endpoints of the caller's workspaces (of one, when given), oldest first. */
  readonly listWebhooks: (
    access: Access,
    workspaceId: WorkspaceId | null
  ) => E<ReadonlyArray<Webhook.Webhook>>
  readonly updateWebhook: (
    access: Access,
    id: WebhookId,
    patch: Webhook.WebhookPatch
  ) => E<Webhook.Webhook, NotFound>
  readonly rotateWebhookSecret: (
    access: Access,
    id: WebhookId,
    rotation: Webhook.Rotation
  ) => E<Webhook.Webhook, NotFound>
  /** Deletes the endpoint with its deliveries. */
  readonly deleteWebhook: (access: Access, id: WebhookId) => E<void, NotFound>
  /**
   * Moves the webhook cursor over up to `max` events in feed order, making one pending delivery (due now)
   * for each endpoint of the event's workspace whose types match — disabled ones too, so their backlog
   * waits for them — and answers how many events it moved past. Each event is fanned out once across
   * processes: a call that meets another moving the same events moves nothing.
   */
  readonly fanOutEvents: (max: number) => E<number>
  /**
   * Leases the due deliveries of up to `max` subjects to `owner` on the database clock. A subject's first is
   * pending, `nextAttemptAt` reached, its endpoint enabled, with no live lease and no earlier delivery of
   * the same subject to the same endpoint still pending — so each endpoint gets one subject's events in
   * order. Up to `perSubject - 1` more of that subject to that endpoint follow it, in order, while each is
   * pending, due and not leased: the sender sends them one after another. Answers each subject's run in
   * order.
   */
  readonly claimDeliveries: (
    request: Webhook.DeliveryClaimRequest
  ) => E<ReadonlyArray<Webhook.ClaimedDelivery>>
  /**
   * Records each attempt whose delivery is still leased under its fence, all in one transaction (a sender
   * records what finished while it was busy in one go), and ends those leases; disables an endpoint when
   * an attempt says so. One with no attempt only ends its lease. Answers, in order, whether each was still
   * leased.
   */
  readonly finishDeliveries: (finished: ReadonlyArray<Webhook.FinishedDelivery>) => E<ReadonlyArray<boolean>>
  /** An endpoint's deliveries, newest first. */
  readonly listDeliveries: (
    access: Access,
    webhookId: WebhookId,
    read: Webhook.DeliveryRead
  ) => E<ReadonlyArray<Webhook.Delivery>, NotFound>
  readonly getDelivery: (access: Access, id: DeliveryId) => E<Webhook.Delivery, NotFound>
  /** Makes a delivery pending and due now again, with the same event (so the same `webhook-id`). */
  readonly redeliver: (access: Access, id: DeliveryId) => E<Webhook.Delivery, NotFound>
  /** Queues `event` (a `ping`) for this endpoint alone; it is not in the feed. */
  readonly enqueuePing: (
    access: Access,
    webhookId: WebhookId,
    event: Event.Event
  ) => E<Webhook.Delivery, NotFound>

  /**
   * Subscribes to wake-up hints for builds and logs changed through this storage (or, for a shared
   * database, by any process). The subscription is live once this succeeds, so a caller can subscribe,
   * then read what is stored, then follow the stream without missing a change in between.
   */
  readonly changes: Effect.Effect<Stream.Stream<Change>, StorageError, Scope.Scope>
}

export class Storage extends Context.Service<Storage, StorageShape>()("@kiln/core/Storage") {}

/** The in-memory reference implementation: every conformance suite passes against it. */
export const layerMemory = (options: StorageOptions = {}): Layer.Layer<Storage> =>
  Layer.effect(Storage, makeMemoryStorage(options))
