/**
 * Kiln's `ArchiveStore` on PostgreSQL: uploaded archives in the same database (and schema) as the
 * storage, so every Kiln process on it can build any archive, whichever process received the upload.
 *
 * A blob is a row of `archive_blobs` and its bytes in 1 MiB `bytea` chunks of `archive_chunks`, written
 * in one transaction: the chunks as the upload arrives, under an id of the put's own, then — once the
 * bytes are hashed and the upload accepted — the row that names them. A put that fails, or whose process
 * dies, leaves nothing (the server rolls the transaction back when the connection drops). A concurrent
 * put of the same bytes, from any process, waits on that row until the first commits, then finds the blob,
 * marks it as put again and drops its own chunks. Chunks are streamed in and out a few at a time on one
 * connection, so memory stays flat whatever the archive's size.
 *
 * Chunked `bytea` rather than large objects: large objects live outside the schema (a dropped schema would
 * leave them behind, and `pg_largeobject` is shared by every deployment in the database), and were slower
 * here. Measured on this machine with 50 MB of random bytes in 1 MiB pieces, one statement at a time:
 * `bytea` chunks stored at 136-141 MB/s and read at 85-89 MB/s, large objects (`lo_put`/`lo_get`) at
 * 55-64 MB/s and 19-23 MB/s.
 */
import { createHash, randomUUID } from "node:crypto"
import { ArchiveStore, SourceError, StorageError } from "@kiln/core"
import { Duration, Effect, Layer, type Scope, Stream } from "effect"
import { open, type Run } from "./internal/connection.ts"
import { migrate } from "./internal/migrations.ts"
import { databaseNow } from "./internal/statements.ts"

export interface Options {
  /** `postgres://user:password@host:port/database`: the storage's database. */
  readonly connectionString: string
  /** The schema of the storage whose versions name the archives (default `kiln`). */
  readonly schema?: string | undefined
  /**
   * Connections for archive transfers (default 4), apart from the storage's pool: an upload or a build
   * context holds one while it streams, and never keeps a claim or a list waiting.
   */
  readonly poolSize?: number | undefined
}

/**
 * 1 MiB chunks, up to 4 statements in flight on one connection (pipelined): measured with 50 MB of random
 * bytes, one statement at a time stores 136-141 MB/s and reads 85-89 MB/s; 4 in flight store 163-168 MB/s
 * and read 149-165 MB/s. 4 MiB chunks were no faster and hold more memory; 256 KiB chunks were slower.
 */
const chunkBytes = 1024 * 1024
const inFlight = 4

const statements = {
  insertChunk: {
    name: "archive_insert_chunk",
    text: "INSERT INTO archive_chunks (blob_id, idx, data) VALUES ($1, $2, $3)"
  },
  /**
   * Names the chunks, or, when the bytes are stored already, marks that blob as put now and answers its
   * id. A put of the same bytes that has not committed yet holds the name: this waits for it. A blob a
   * sweep removes meanwhile frees the name, and the insert goes ahead.
   */
  name: {
    name: "archive_name",
    text: `INSERT INTO archive_blobs (sha256, blob_id, size_bytes, chunk_bytes, stored_at)
VALUES ($1, $2, $3, $4, ${databaseNow})
ON CONFLICT (sha256) DO UPDATE SET stored_at = EXCLUDED.stored_at
RETURNING blob_id`
  },
  dropChunks: { name: "archive_drop_chunks", text: "DELETE FROM archive_chunks WHERE blob_id = $1" },
  blob: {
    name: "archive_blob",
    text: "SELECT blob_id, size_bytes, chunk_bytes FROM archive_blobs WHERE sha256 = $1"
  },
  chunk: {
    name: "archive_chunk",
    text: "SELECT data FROM archive_chunks WHERE blob_id = $1 AND idx = $2"
  },
  stale: {
    name: "archive_stale",
    text: `SELECT sha256 FROM archive_blobs
WHERE stored_at < ${databaseNow} - $1 AND ($2::text IS NULL OR sha256 > $2)
ORDER BY sha256 LIMIT $3`
  },
  remove: {
    name: "archive_remove",
    text: `DELETE FROM archive_blobs WHERE sha256 = ANY($1::text[]) AND stored_at < ${databaseNow} - $2
RETURNING sha256`
  }
} as const

const unavailable = (message: string) => (cause: StorageError.StorageError) =>
  new SourceError.SourceError({ reason: "Unavailable", message: `${message}: ${cause.message}`, cause })

/** The body in chunks of exactly `size` bytes (the last one shorter), copied into buffers of their own. */
const inChunksOf =
  (size: number) =>
  <E>(body: Stream.Stream<Uint8Array, E>): Stream.Stream<Buffer, E> =>
    Stream.mapAccum(
      body,
      () => ({ buffer: Buffer.allocUnsafe(size), filled: 0 }),
      (state, bytes) => {
        const full: Array<Buffer> = []
        let { buffer, filled } = state
        for (let offset = 0; offset < bytes.length; ) {
          const taken = Math.min(size - filled, bytes.length - offset)
          buffer.set(bytes.subarray(offset, offset + taken), filled)
          filled += taken
          offset += taken
          if (filled === size) {
            full.push(buffer)
            buffer = Buffer.allocUnsafe(size)
            filled = 0
          }
        }
        return [{ buffer, filled }, full]
      },
      { onHalt: ({ buffer, filled }) => (filled > 0 ? [buffer.subarray(0, filled)] : []) }
    )

/** Opens a pool for the life of the scope, migrates the schema and builds the service. */
export const make = (
  options: Options
): Effect.Effect<ArchiveStore.ArchiveStoreShape, StorageError.StorageError, Scope.Scope> =>
  Effect.gen(function* () {
    const schema = options.schema ?? "kiln"
    const db = yield* open({
      connectionString: options.connectionString,
      schema,
      poolSize: options.poolSize ?? 4,
      pipeline: true
    })
    yield* migrate(db, schema)

    const put = <E>({ body, complete }: ArchiveStore.ArchiveUpload<E>) =>
      db
        .transaction((tx) =>
          Effect.gen(function* () {
            const blobId = randomUUID()
            const hash = createHash("sha256")
            let sizeBytes = 0
            yield* body.pipe(
              Stream.map((bytes) => {
                hash.update(bytes)
                sizeBytes += bytes.length
                return bytes
              }),
              inChunksOf(chunkBytes),
              Stream.zipWithIndex,
              Stream.mapEffect(([data, idx]) => tx(statements.insertChunk, [blobId, idx, data]), {
                concurrency: inFlight
              }),
              Stream.runDrain
            )
            const blob: ArchiveStore.StoredBlob = { sha256: hash.digest("hex"), sizeBytes }
            if (complete !== undefined) yield* complete(blob)
            const [named] = yield* tx<{ readonly blob_id: string }>(statements.name, [
              blob.sha256,
              blobId,
              sizeBytes,
              chunkBytes
            ])
            // Stored already: this put's copy goes, in the transaction that wrote it.
            if (named?.blob_id !== blobId) yield* tx(statements.dropChunks, [blobId])
            return blob
          })
        )
        .pipe(
          Effect.mapError((error) =>
            error instanceof StorageError.StorageError
              ? unavailable("the archive store could not store the archive")(error)
              : error
          )
        )

    const blobOf = (run: Run, sha256: string) =>
      Effect.map(
        run<{ readonly blob_id: string; readonly size_bytes: number; readonly chunk_bytes: number }>(
          statements.blob,
          [sha256]
        ),
        (rows) => rows[0]
      )

    const has = (sha256: string) =>
      Effect.mapError(
        Effect.map(blobOf(db.run, sha256), (blob) => blob !== undefined),
        unavailable("the archive store could not look up an archive")
      )

    const read = (sha256: string): Stream.Stream<Uint8Array, SourceError.SourceError> =>
      Stream.unwrap(
        Effect.gen(function* () {
          const failed = unavailable("the archive store could not read an archive")
          const run = yield* Effect.mapError(db.connection, failed)
          const blob = yield* Effect.mapError(blobOf(run, sha256), failed)
          if (blob === undefined) {
            return yield* new SourceError.SourceError({
              reason: "Missing",
              message: `archive ${sha256.slice(0, 8)} is not stored`
            })
          }
          const count = Math.ceil(blob.size_bytes / blob.chunk_bytes)
          const expected = (idx: number) =>
            idx < count - 1 ? blob.chunk_bytes : blob.size_bytes - (count - 1) * blob.chunk_bytes
          const chunk = (idx: number) =>
            Effect.flatMap(
              Effect.mapError(run<{ readonly data: Buffer }>(statements.chunk, [blob.blob_id, idx]), failed),
              ([row]) =>
                row !== undefined && row.data.length === expected(idx)
                  ? Effect.succeed<Uint8Array>(row.data)
                  : Effect.fail(
                      new SourceError.SourceError({
                        reason: "Unavailable",
                        message: `archive ${sha256.slice(0, 8)} is damaged in the archive store: chunk ${idx} is missing or cut short`
                      })
                    )
            )
          return count === 0
            ? Stream.empty
            : Stream.mapEffect(Stream.range(0, count - 1), chunk, { concurrency: inFlight })
        })
      )

    const stale = (olderThan: Duration.Duration, after: string | undefined, limit: number) =>
      Effect.mapError(
        Effect.map(
          db.run<{ readonly sha256: string }>(statements.stale, [
            Duration.toMillis(olderThan),
            after ?? null,
            limit
          ]),
          (rows) => rows.map((row) => row.sha256)
        ),
        unavailable("the archive store could not list archives")
      )

    const remove = (sha256s: ReadonlyArray<string>, olderThan: Duration.Duration) =>
      Effect.mapError(
        Effect.map(
          db.run<{ readonly sha256: string }>(statements.remove, [sha256s, Duration.toMillis(olderThan)]),
          (rows) => rows.map((row) => row.sha256).sort()
        ),
        unavailable("the archive store could not remove archives")
      )

    return { put, has, read, stale, remove } satisfies ArchiveStore.ArchiveStoreShape
  })

/**
 * The archive store as a layer on the storage's database and schema; its pool is closed when the layer
 * is released. Give it to `SourceStore.layerWithArchiveStore`.
 */
export const layer = (options: Options): Layer.Layer<ArchiveStore.ArchiveStore, StorageError.StorageError> =>
  Layer.effect(ArchiveStore.ArchiveStore, make(options))
