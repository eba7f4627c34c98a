/**
 * An app version is an immutable source snapshot of an app: a git commit or an uploaded archive.
 * `commitSha` is the git commit, or the SHA-256 of the archive, once known; a version is `ready` exactly
 * when it has one.
 */
import { type DateTime, Schema } from "effect"
import { AppId, AppVersionId, WorkspaceId } from "./Id.ts"

/** A git commit (SHA-1 or SHA-256 object format) or an archive's SHA-256, in lowercase hex. */
export const CommitSha = Schema.String.check(
  Schema.isPattern(/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/, { expected: "40 or 64 lowercase hex digits" })
)
export type CommitSha = typeof CommitSha.Type

const Url = Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(2048)).annotate({
  description:
    "An https://, http://, ssh:// or git@host:path URL; a local path or file:/// URL only inside a directory the server allows."
})
const Ref = Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(255))

export const GitSource = Schema.Struct({
  type: Schema.Literal("git"),
  url: Url,
  ref: Schema.NullOr(Ref),
  author: Schema.NullOr(Schema.String),
  message: Schema.NullOr(Schema.String)
})
export const ArchiveSource = Schema.Struct({
  type: Schema.Literal("archive"),
  sizeBytes: Schema.NullOr(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)))
})
export const Source = Schema.Union([GitSource, ArchiveSource])
export type Source = typeof Source.Type

export const Status = Schema.Literals(["pending", "ready", "failed"])
export type Status = typeof Status.Type

export const AppVersion = Schema.Struct({
  id: AppVersionId,
  workspaceId: WorkspaceId,
  appId: AppId,
  status: Status,
  source: Source,
  commitSha: Schema.NullOr(CommitSha),
  error: Schema.NullOr(Schema.String),
  createdAt: Schema.DateTimeUtc,
  updatedAt: Schema.DateTimeUtc
}).check(
  Schema.makeFilter((version) => {
    if ((version.status === "ready") !== (version.commitSha !== null))
      return { path: ["commitSha"], issue: "a version has a commit sha exactly when it is ready" }
    if ((version.status === "failed") !== (version.error !== null))
      return { path: ["error"], issue: "a version has an error exactly when it failed" }
    return undefined
  })
)
export type AppVersion = typeof AppVersion.Type

/** What a caller gives to create a version: a git url with a ref or an exact commit, or an archive to upload. */
export const NewSource = Schema.Union([
  Schema.Struct({
    type: Schema.Literal("git"),
    url: Url,
    ref: Schema.optionalKey(Ref),
    commitSha: Schema.optionalKey(CommitSha)
  }).check(
    Schema.makeFilter((source) =>
      source.ref === undefined && source.commitSha === undefined
        ? "a git source needs a ref or a commitSha"
        : undefined
    )
  ),
  Schema.Struct({ type: Schema.Literal("archive") })
])
export type NewSource = typeof NewSource.Type

export const NewAppVersion = Schema.Struct({ appId: AppId, source: NewSource })
export type NewAppVersion = typeof NewAppVersion.Type

/** How a pending version becomes final: resolved to a commit (or stored archive), or failed. */
export type Resolution =
  | {
      readonly status: "ready"
      readonly commitSha: CommitSha
      readonly author?: string | null
      readonly message?: string | null
      readonly sizeBytes?: number
    }
  | { readonly status: "failed"; readonly error: string }

/** An archive version's resolution once its archive is stored: ready, named by the archive's hash. */
export const archiveStored = (stored: {
  readonly sha256: CommitSha
  readonly sizeBytes: number
}): Resolution => ({
  status: "ready",
  commitSha: stored.sha256,
  sizeBytes: stored.sizeBytes
})

/** A new version: ready at once for a git source pinned to a commit, pending otherwise. */
export const make = (
  id: AppVersionId,
  workspaceId: WorkspaceId,
  input: NewAppVersion,
  now: DateTime.Utc
): AppVersion => {
  const source: Source =
    input.source.type === "git"
      ? { type: "git", url: input.source.url, ref: input.source.ref ?? null, author: null, message: null }
      : { type: "archive", sizeBytes: null }
  const commitSha = input.source.type === "git" ? (input.source.commitSha ?? null) : null
  return {
    id,
    workspaceId,
    appId: input.appId,
    status: commitSha === null ? "pending" : "ready",
    source,
    commitSha,
    error: null,
    createdAt: now,
    updatedAt: now
  }
}

/** Applies a resolution to a pending version. */
export const resolve = (version: AppVersion, resolution: Resolution, now: DateTime.Utc): AppVersion => {
  if (resolution.status === "failed")
    return { ...version, status: "failed", error: resolution.error, updatedAt: now }
  const source: Source =
    version.source.type === "git"
      ? {
          ...version.source,
          author: resolution.author ?? version.source.author,
          message: resolution.message ?? version.source.message
        }
      : { ...version.source, sizeBytes: resolution.sizeBytes ?? version.source.sizeBytes }
  return { ...version, status: "ready", commitSha: resolution.commitSha, source, updatedAt: now }
}
