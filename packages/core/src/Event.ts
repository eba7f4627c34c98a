/**
 * Events: what leaves Kiln when its state changes (DESIGN.md §11). Storage writes each one in the
 * transaction of the change it describes (an outbox), so no change commits without its event and no event
 * without its change. Consumers read them in order from a cursor (`Events.stream`, `GET /api/events`) and
 * webhook endpoints receive them signed.
 */
import { DateTime, Schema } from "effect"
import type { AppVersion } from "./AppVersion.ts"
import * as Build from "./Build.ts"
import { EventId, WorkspaceId } from "./Id.ts"

export const Type = Schema.Literals([
  "build.queued",
  /** Claimed by an engine: the canonical status is now `running`. */
  "build.running",
  /** The engine started the build's work (its container or image build). */
  "build.started",
  /** Given back to the queue by an engine that claimed it ahead and never started it: `pending` again. */
  "build.requeued",
  "build.cancel_requested",
  "build.step.started",
  "build.step.finished",
  /** Stopped, with `build.outcome`: success, failure, cancelled, timed_out, lost or skipped. */
  "build.finished",
  /** Deleted by retention, with steps and log: the build as it was last. */
  "build.deleted",
  /** Its log lines were deleted by retention; the build stays. */
  "build.logs_expired",
  "app_version.ready",
  "app_version.failed",
  /** Sent to one webhook endpoint on request, to test it; never in the feed. */
  "ping"
])
export type Type = typeof Type.Type

export const Event = Schema.Struct({
  id: EventId,
  type: Type,
  timestamp: Schema.DateTimeUtc,
  workspaceId: WorkspaceId,
  /** What it is about (a build or app version id): deliveries of one subject to one endpoint keep their order. */
  subject: Schema.String,
  /** The object as the canonical API shows it: `{ build }`, `{ build, step }` or `{ appVersion }`. */
  data: Schema.Record(Schema.String, Schema.Json)
})
export type Event = typeof Event.Type

/**
 * A position in the feed: the events after it are the ones not yet seen. Opaque to consumers; an adapter
 * writes its own form within this shape (a counter, or a transaction id and a counter on PostgreSQL).
 */
export const Cursor = Schema.String.check(
  Schema.isPattern(/^[0-9]{1,20}(?:\.[0-9]{1,20})?$/, { expected: "an event cursor" })
).pipe(Schema.brand("EventCursor"))
export type Cursor = typeof Cursor.Type

/** The cursor of a feed position: a counter, or a transaction id and a counter. */
export const cursorOf = (major: number | bigint | string, minor?: number | bigint | string): Cursor =>
  (minor === undefined ? `${major}` : `${major}.${minor}`) as Cursor

/** An event as the feed holds it: with the cursor that resumes after it. */
export interface Stored extends Event {
  readonly cursor: Cursor
}

/** What a feed read asks for: the events after `after` (from the start when null), in feed order. */
export interface Read {
  readonly after: Cursor | null
  /** Only events of these types; every type when null. */
  readonly types: ReadonlyArray<Type> | null
  readonly limit: number
}

/** JSON as the canonical API writes it: DateTimes as ISO strings (their `toJSON`). */
const json = (value: unknown): Schema.Json => JSON.parse(JSON.stringify(value))

const viewKeys = Object.keys(Build.View.fields)

/**
 * The build's view fields, picked rather than encoded: the schema's encoder costs more than the write. A
 * field is copied as it is unless JSON would change it (a DateTime, an object): a claim writes one event per
 * build, and turning the whole build into text and back was a tenth of its cost.
 */
const buildJson = (build: Build.Build): Schema.Json => {
  const all = build as unknown as { readonly [key: string]: unknown }
  const view: { [key: string]: Schema.Json } = {}
  for (const key of viewKeys) {
    if (!(key in all)) continue
    const value = all[key]
    if (value === undefined) continue
    view[key] =
      value === null || typeof value !== "object"
        ? (value as Schema.Json)
        : DateTime.isDateTime(value)
          ? (value.toJSON() as string)
          : json(value)
  }
  return view
}

const buildEvent = (id: EventId, type: Type, build: Build.Build, data: object = {}): Event => ({
  id,
  type,
  timestamp: build.updatedAt,
  workspaceId: build.workspaceId,
  subject: build.id,
  data: { build: buildJson(build), ...(json(data) as object) }
})

/**
 * The types a build's write from `before` (undefined: created) to `after` announces, in the order they
 * happened. One write can pass several phases (a short build's `Started` and `Succeeded` together).
 */
export const buildTypes = (before: Build.Build | undefined, after: Build.Build): ReadonlyArray<Type> => {
  const types: Array<Type> = []
  if (before === undefined) types.push("build.queued")
  if (before !== undefined && before.phase !== "queued" && after.phase === "queued")
    types.push("build.requeued")
  if (before?.startedAt == null && after.startedAt !== null) types.push("build.running")
  if (before?.runningAt == null && after.runningAt !== null) types.push("build.started")
  if (before?.cancelRequestedAt == null && after.cancelRequestedAt !== null && after.phase !== "stopped")
    types.push("build.cancel_requested")
  if (before?.phase !== "stopped" && after.phase === "stopped") types.push("build.finished")
  return types
}

/** The events of a build's write, one per type `buildTypes` names, with ids from `nextId`. */
export const forBuild = (
  before: Build.Build | undefined,
  after: Build.Build,
  nextId: () => EventId
): ReadonlyArray<Event> => buildTypes(before, after).map((type) => buildEvent(nextId(), type, after))

/** The event of a claim, for a write that never read the queued build it claimed. */
export const forClaim = (claimed: Build.Build, nextId: () => EventId): Event =>
  buildEvent(nextId(), "build.running", claimed)

/** A step recorded: started while it runs, finished once it has a result. */
export const forStep = (id: EventId, build: Build.Build, step: Build.BuildStep, at: DateTime.Utc): Event => ({
  ...buildEvent(id, step.status === "running" ? "build.step.started" : "build.step.finished", build, {
    step: json(step)
  }),
  timestamp: at
})

/** What retention did to a stopped build, at `at`. */
export const forRetention = (
  id: EventId,
  type: "build.deleted" | "build.logs_expired",
  build: Build.Build,
  at: DateTime.Utc
): Event => ({ ...buildEvent(id, type, build), timestamp: at })

/** A version that became ready or failed; a pending one announces nothing. */
export const forAppVersion = (id: EventId, version: AppVersion): Event | undefined =>
  version.status === "pending"
    ? undefined
    : {
        id,
        type: version.status === "ready" ? "app_version.ready" : "app_version.failed",
        timestamp: version.updatedAt,
        workspaceId: version.workspaceId,
        subject: version.id,
        data: { appVersion: json(version) }
      }

/** The test event one endpoint is sent on request. */
export const ping = (id: EventId, workspaceId: WorkspaceId, webhookId: string, at: DateTime.Utc): Event => ({
  id,
  type: "ping",
  timestamp: at,
  workspaceId,
  subject: "ping",
  data: { webhookId }
})

/** The body every webhook delivery of an event carries, as Standard Webhooks suggests: type, timestamp, data. */
export const body = (event: Event): string =>
  JSON.stringify({
    id: event.id,
    type: event.type,
    timestamp: DateTime.formatIso(event.timestamp),
    workspaceId: event.workspaceId,
    data: event.data
  })

/** An event as the feed and the API show it. */
export const toJson = (event: Stored) => ({
  id: event.id,
  cursor: event.cursor,
  type: event.type,
  timestamp: DateTime.formatIso(event.timestamp),
  workspaceId: event.workspaceId,
  subject: event.subject,
  data: event.data
})
