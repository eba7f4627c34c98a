/**
 * The SourceStore turns an app version into a build context — a tar stream of its source tree — and
 * stores uploaded archives, content-addressed by SHA-256 (DESIGN.md §3). Archives are validated when
 * they are stored, so a bad one is refused before any build of it starts. The archives themselves live
 * in an `ArchiveStore`: a local directory by default, a shared one (PostgreSQL) when several processes
 * build them.
 */
import { join } from "node:path"
import { Context, type Duration, Effect, Layer, type Stream } from "effect"
import type { AppVersion, CommitSha } from "./AppVersion.ts"
import { type ArchiveStore, layer as archiveStoreLayer } from "./ArchiveStore.ts"
import { makeFsSourceStore } from "./internal/fsSourceStore.ts"
import type { SourceError } from "./SourceError.ts"

export { SourceError, SourceErrorReason } from "./SourceError.ts"

export interface StoredArchive {
  readonly sha256: CommitSha
  readonly sizeBytes: number
}

export interface GitCommit {
  readonly commitSha: CommitSha
  readonly author: string | null
  readonly message: string | null
}

/** A git source refused: `issue` says what is expected of the `url` or `ref` given (see `GitUrl`). */
export interface GitRefusal {
  readonly field: "url" | "ref"
  readonly issue: string
}

/**
 * Which of these archives (by SHA-256) an app version names. A caller that cannot tell answers all of
 * them: a sweep that cannot ask removes nothing.
 */
export type ReferencedAmong = (sha256s: ReadonlyArray<CommitSha>) => Effect.Effect<ReadonlySet<string>>

/** An answer for tests and simple hosts: exactly these archives are referenced. */
export const referencedOnly =
  (sha256s: Iterable<string>): ReferencedAmong =>
  () =>
    Effect.succeed(new Set(sha256s))

export interface SourceStoreShape {
  /**
   * Stores an uploaded `.tar.gz` once it is fully received and validated; the same bytes stored twice
   * are one blob. Answers its SHA-256 (the version's `commitSha`) and its compressed size.
   */
  readonly putArchive: <E>(
    body: Stream.Stream<Uint8Array, E>
  ) => Effect.Effect<StoredArchive, SourceError | E>
  /** The largest upload `putArchive` takes, compressed, so a caller can refuse a larger one before reading it. */
  readonly maxArchiveBytes: number
  /**
   * Why this store would refuse to hand a git URL (and ref) to git, naming the field at fault, or
   * undefined when it would not. `resolveGit` and `context` refuse the same with reason `Refused`; a
   * caller checks first to refuse a source when it is given. Reads the text only, never the disk.
   */
  readonly checkGit: (url: string, ref?: string) => GitRefusal | undefined
  /** The commit a git ref (branch, tag or sha) of a repository points at, with its author and message. */
  readonly resolveGit: (url: string, ref: string) => Effect.Effect<GitCommit, SourceError>
  /**
   * The build context of a ready version: an uncompressed tar of its source tree, rooted at
   * `rootDirectory` ("" for the whole tree). Temporary files live only as long as the stream.
   */
  readonly context: (version: AppVersion, rootDirectory: string) => Stream.Stream<Uint8Array, SourceError>
  /**
   * Removes the stored archives that no app version names, once they were last stored longer ago than
   * `archiveGracePeriod`, and answers their SHA-256s. Lists the stale ones first, then asks
   * `referencedAmong` about them, then removes those still stale: an upload stores (or re-stores) its
   * archive just before its version names it, so the grace period covers the moment in between.
   */
  readonly sweepArchives: (
    referencedAmong: ReferencedAmong
  ) => Effect.Effect<ReadonlyArray<CommitSha>, SourceError>
}

export interface SourceStoreOptions {
  /**
   * Where temporary files live (uploads being received, git checkouts), and with `layer`, the stored
   * archives too (under `archives/`); created if missing.
   */
  readonly directory: string
  /** The largest upload accepted, compressed. Default 256 MiB. */
  readonly maxArchiveBytes?: number | undefined
  /** The largest an archive may unpack to. Default 2 GiB. */
  readonly maxUnpackedBytes?: number | undefined
  /** The most entries an archive may have. Default 100,000. */
  readonly maxEntries?: number | undefined
  /**
   * Directories whose git repositories a git URL may name, as an absolute path or `file:///` URL: the
   * directory itself or anything below it. Default none, so only remote URLs (https, http, ssh) are
   * fetched: whoever can create a version could otherwise read every repository this host can.
   */
  readonly localRepositories?: ReadonlyArray<string> | undefined
  /** How long one git fetch may take. Default 5 minutes. */
  readonly gitTimeout?: Duration.Input | undefined
  /**
   * How long a stored archive that no version names is kept before `sweepArchives` removes it, counted
   * from when it was last stored. Default 1 hour.
   */
  readonly archiveGracePeriod?: Duration.Input | undefined
}

export class SourceStore extends Context.Service<SourceStore, SourceStoreShape>()("@kiln/core/SourceStore") {}

/**
 * The store on a local directory, archives included (`<directory>/archives`), with the git CLI for git
 * sources: for one process, or processes on one host.
 */
export const layer = (options: SourceStoreOptions): Layer.Layer<SourceStore, SourceError> =>
  layerWithArchiveStore(options).pipe(
    Layer.provide(archiveStoreLayer({ directory: join(options.directory, "archives") }))
  )

/**
 * The store with its archives in the `ArchiveStore` provided to it (e.g. `PgArchiveStore`, which every
 * process on one database reads); `directory` holds only temporary files.
 */
export const layerWithArchiveStore = (
  options: SourceStoreOptions
): Layer.Layer<SourceStore, SourceError, ArchiveStore> =>
  Layer.effect(SourceStore, makeFsSourceStore(options))
