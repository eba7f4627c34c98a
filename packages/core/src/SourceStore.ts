/**
 * The SourceStore turns an app version into a build context — a tar stream of its source tree — and
 * stores uploaded archives, content-addressed by SHA-256 (DESIGN.md §3). Archives are validated when
 * they are stored, so a bad one is refused before any build of it starts.
 */
import { Context, type Duration, type Effect, Layer, type Stream } from "effect"
import type { AppVersion, CommitSha } from "./AppVersion.ts"
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
}

export interface SourceStoreOptions {
  /** Where stored archives and temporary files live; created if missing. */
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
}

export class SourceStore extends Context.Service<SourceStore, SourceStoreShape>()("@kiln/core/SourceStore") {
  /** The store on a local directory, with the git CLI for git sources. */
  static readonly layer = (options: SourceStoreOptions): Layer.Layer<SourceStore, SourceError> =>
    Layer.effect(SourceStore, makeFsSourceStore(options))
}
