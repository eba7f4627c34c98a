/**
 * Where the SourceStore keeps uploaded archives: blobs named by the SHA-256 of their bytes, each stored
 * once and never changed. The SourceStore streams an upload into the store as it arrives while it checks
 * the archive, and the store keeps the blob only once the check has passed; a build reads it back as a
 * stream. A blob is visible only once it is complete, so a put that fails, is interrupted or whose
 * process dies leaves nothing a build can read.
 *
 * Backends: a local directory (`layer`, what `SourceStore.layer` uses), which only the processes on its
 * host can read; PostgreSQL (`PgArchiveStore` in `@kiln/adapter-postgres`), which every process on one
 * database reads. The contract asks no more than an object store gives — keys named by content, streamed
 * puts and reads, a blob visible once complete, the time it was last written — so an S3-compatible store
 * fits as a third backend: a multipart upload to a temporary key as the body streams, hashed on the way,
 * then copied to `<sha256>` once `complete` passes (or, when that key exists, the existing object's time
 * refreshed), and the temporary key deleted. `ArchiveStoreConformance` in `@kiln/core/testing` holds a
 * backend to the contract.
 */
import { Context, type Duration, type Effect, Layer, type Stream } from "effect"
import { makeDirectoryArchives } from "./internal/directoryArchives.ts"
import type { SourceError } from "./SourceError.ts"

/** A stored blob: the SHA-256 of its bytes (lowercase hex), which names it, and its size. */
export interface StoredBlob {
  readonly sha256: string
  readonly sizeBytes: number
}

export interface ArchiveUpload<E> {
  /** The blob's bytes, read once, as they arrive: the store writes them as it reads them. */
  readonly body: Stream.Stream<Uint8Array, E>
  /**
   * Decides, once all of the body is written, whether it is kept: the store hashes what it wrote and
   * asks, and only if this succeeds does the blob become visible (or, when it was stored already, count
   * as put now). Failing it stores nothing and fails the put. The SourceStore waits here for its check of
   * the archive, which reads the same bytes meanwhile.
   */
  readonly complete?: ((blob: StoredBlob) => Effect.Effect<void, SourceError>) | undefined
}

export interface ArchiveStoreShape {
  /**
   * Stores a blob as its body streams in, and answers its name and size. A blob is stored once: when one
   * with the same bytes is stored already, what this put wrote is discarded and the stored one counts as
   * put now, so the grace period that keeps it from `remove` starts again. A blob becomes visible only
   * once all of it is stored, so a put that fails, is interrupted or whose process dies leaves nothing;
   * concurrent puts of one blob, from any number of processes, all succeed and leave one.
   */
  readonly put: <E>(upload: ArchiveUpload<E>) => Effect.Effect<StoredBlob, SourceError | E>
  /** Whether a complete blob is stored under `sha256`. */
  readonly has: (sha256: string) => Effect.Effect<boolean, SourceError>
  /** The bytes of a stored blob; `Missing` when there is none. */
  readonly read: (sha256: string) => Stream.Stream<Uint8Array, SourceError>
  /**
   * Up to `limit` blobs last put longer than `olderThan` ago, by sha256, those after `after` (exclusive):
   * the candidates of a sweep, a page at a time.
   */
  readonly stale: (
    olderThan: Duration.Duration,
    after: string | undefined,
    limit: number
  ) => Effect.Effect<ReadonlyArray<string>, SourceError>
  /**
   * Removes those of these blobs that are still last put longer than `olderThan` ago — a put since keeps
   * one — and answers the ones it removed.
   */
  readonly remove: (
    sha256s: ReadonlyArray<string>,
    olderThan: Duration.Duration
  ) => Effect.Effect<ReadonlyArray<string>, SourceError>
}

export interface DirectoryOptions {
  /** Where the blobs live, as `<sha256>.tar.gz`; created if missing. */
  readonly directory: string
}

export class ArchiveStore extends Context.Service<ArchiveStore, ArchiveStoreShape>()(
  "@kiln/core/ArchiveStore"
) {}

/** Blobs in a local directory: for one host (SQLite, one process), never shared between hosts. */
export const layer = (options: DirectoryOptions): Layer.Layer<ArchiveStore, SourceError> =>
  Layer.effect(ArchiveStore, makeDirectoryArchives(options.directory))
