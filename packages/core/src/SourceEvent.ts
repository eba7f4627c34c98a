/**
 * A source event is an incoming push (or API call) that caused builds. It is stored once per delivery:
 * a redelivery with the same `deliveryId` in a workspace is the same event.
 */
import { type DateTime, Schema } from "effect"
import { CommitSha } from "./AppVersion.ts"
import { SourceEventId, WorkspaceId } from "./Id.ts"

export const Kind = Schema.Literals(["push", "pull_request", "manual", "api"])
export type Kind = typeof Kind.Type

const Text = Schema.String.check(Schema.isMaxLength(4096))

export const SourceEvent = Schema.Struct({
  id: SourceEventId,
  workspaceId: WorkspaceId,
  deliveryId: Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(255)),
  kind: Kind,
  repository: Text,
  branch: Schema.NullOr(Text),
  commitSha: Schema.NullOr(CommitSha),
  changedPaths: Schema.Array(Text).check(Schema.isMaxLength(10_000)),
  author: Schema.NullOr(Text),
  message: Schema.NullOr(Text),
  receivedAt: Schema.DateTimeUtc
})
export type SourceEvent = typeof SourceEvent.Type

export const NewSourceEvent = SourceEvent.mapFields(
  ({ id: _id, receivedAt: _receivedAt, ...fields }) => fields
)
export type NewSourceEvent = typeof NewSourceEvent.Type

export const make = (id: SourceEventId, input: NewSourceEvent, now: DateTime.Utc): SourceEvent => ({
  id,
  ...input,
  receivedAt: now
})
