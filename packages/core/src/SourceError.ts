/**
 * The errors of the source area: why an archive was refused, a git fetch failed, or the store's disk
 * failed, with whether a retry can help.
 */
import { Schema } from "effect"

export const SourceErrorReason = Schema.Literals([
  /** Not a gzip-compressed tar, or an entry escapes the root (`../`, an absolute path, a symlink out). */
  "InvalidArchive",
  /** Over a configured cap: the compressed size, the unpacked size or the number of entries. */
  "TooLarge",
  /** git could not fetch the repository or the commit, or the ref does not exist. */
  "GitFailed",
  /**
   * A git URL or ref this store does not hand to git: not one of the remote forms, a local repository
   * outside the directories the host allows, or something git would read as an option.
   */
  "Refused",
  /** The stored archive, or the root directory inside the source, does not exist. */
  "Missing",
  /** The store's disk or the git remote failed in a way that may pass; retrying can help. */
  "Unavailable"
])
export type SourceErrorReason = typeof SourceErrorReason.Type

export class SourceError extends Schema.TaggedError<SourceError>()("SourceError", {
  reason: SourceErrorReason,
  /** A sentence a user can act on; never a host path outside the store or a credential. */
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  get retryable(): boolean {
    return this.reason === "Unavailable"
  }
}
