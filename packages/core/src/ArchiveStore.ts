/**
 * Where the SourceStore keeps uploaded archives: blobs named by the SHA-256 of their bytes, each written
 * once and never changed. The SourceStore receives, hashes and validates an upload, then puts it here; a
 * build reads it back as a stream. A blob is visible only once it is complete, so a put that fails, is
 * interrupted or whose process dies leaves nothing a build can read.
 *
 * Backends: a local directory (`layer`, what `SourceStore.layer` uses), which only the processes on its
 * host can read; PostgreSQL (`PgArchiveStore` in `@kiln/adapter-postgres`), which every process on one
 * database reads. The contract asks no more than an object store gives — keys named by content, streamed
 * puts and reads, a blob visible once complete, the time it was last written — so an S3-compatible store
 * fits as a third backend. `ArchiveStoreConformance` in `@kiln/core/testing` holds a backend to it.
 */
import { Context, type Duration, type Effect, Layer, type Stream } from "effect"
import { makeDirectoryArchives } from "./internal/directoryArchives.ts"
import { SourceError } from "./SourceError.ts"

export interface ArchiveBlob {
  /** The SHA-256 of `body`, lowercase hex: the caller hashed it (the store takes it on trust). */
  readonly sha256: string
  readonly sizeBytes: number
  /** The blob's bytes, read once, and not at all when the blob is stored already. */
  readonly body: Stream.Stream<Uint8Array, SourceError>
}

export interface ArchiveStoreShape {
  /**
   * Stores a blob unless it is stored already; either way it counts as put now, so the grace period that
   * keeps a blob from `remove` starts again. The blob becomes visible only once all of it is stored:
   * concurrent puts of one blob, from any number of processes, all succeed and leave one. A body that is
   * not `sizeBytes` long stores nothing.
   */
  readonly put: (blob: ArchiveBlob) => Effect.Effect<void, SourceError>
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

/** The failure of a put whose body was not the size its caller said: nothing is stored. */
export const wrongSize = (sha256: string, expected: number, actual: number): SourceError =>
  new SourceError({
    reason: "Unavailable",
    message: `archive ${sha256.slice(0, 8)} was not stored: ${actual} of its ${expected} bytes arrived`
  })

export class ArchiveStore extends Context.Service<ArchiveStore, ArchiveStoreShape>()(
  "@kiln/core/ArchiveStore"
) {
  /** Blobs in a local directory: for one host (SQLite, one process), never shared between hosts. */
  static readonly layer = (options: DirectoryOptions): Layer.Layer<ArchiveStore, SourceError> =>
    Layer.effect(ArchiveStore, makeDirectoryArchives(options.directory))
}
