/**
 * The errors of the storage area. `NotFound` and `Conflict` are answers about the data; `StorageError`
 * is the storage itself failing, with a reason that says whether a retry can help. Their tags are the
 * storage's own (`StorageNotFound`, `StorageConflict`), apart from the errors an HTTP API answers with, so
 * a layer that maps one to the other tells them apart by tag.
 */
import { Schema } from "effect"

/** The object does not exist, or the caller may not see it: the two are deliberately the same. */
export class NotFound extends Schema.TaggedError<NotFound>()("StorageNotFound", {
  /** What kind of object was asked for (`build`, `workspace`, `source event`, …). */
  entity: Schema.String,
  /** The id asked for, as it was asked. */
  id: Schema.String,
  message: Schema.String
}) {
  static of(entity: string, id: string): NotFound {
    return new NotFound({ entity, id, message: `${entity} ${id} not found` })
  }
}

/** The request contradicts what is stored (a taken handle, a reused idempotency key, a version not ready). */
export class Conflict extends Schema.TaggedError<Conflict>()("StorageConflict", {
  message: Schema.String,
  /** The rule the request broke, where the storage knows it: a unique constraint's name, say. */
  constraint: Schema.optionalKey(Schema.String)
}) {}

export const StorageErrorReason = Schema.Literals([
  /** The database cannot be reached or refused the connection; retrying later can help. */
  "Unavailable",
  /** Another writer held a lock past the busy timeout, or a serialization failure; retrying can help. */
  "Busy",
  /** The stored data or schema is not what this version expects; retrying cannot help. */
  "Corrupt",
  /** Anything else the driver reported; retrying is not known to help. */
  "Unknown"
])
export type StorageErrorReason = typeof StorageErrorReason.Type

/** The storage itself failed. The message is for operators; it never reaches an HTTP client. */
export class StorageError extends Schema.TaggedError<StorageError>()("StorageError", {
  reason: StorageErrorReason,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  get retryable(): boolean {
    return this.reason === "Unavailable" || this.reason === "Busy"
  }
}
