/**
 * Kiln's `ArchiveStore` on PostgreSQL: uploaded archives in the same database (and schema) as the
 * storage, so every Kiln process on it can build any archive, whichever process received the upload.
 *
 * A blob is a row of `archive_blobs` and its bytes in 1 MiB `bytea` rows of `archive_chunks`, written in
 * one transaction: the chunks with one `COPY … FROM STDIN` as the upload arrives, under an id of the put's
 * own, then — once the bytes are hashed and the upload accepted — the row that names them. A put that
 * fails, or whose process dies, leaves nothing (the server rolls the transaction back when the connection
 * drops). A concurrent put of the same bytes, from any process, waits on that row until the first commits,
 * then finds the blob, marks it as put again and drops its own chunks. A read is one `COPY … TO STDOUT`,
 * paced by its reader. Memory stays flat whatever the archive's size: at most a chunk is held.
 *
 * COPY in binary rather than a statement per chunk: measured on this machine with 50 MB of random bytes in
 * 1 MiB rows, `INSERT` stored 60-82 MB/s (the server busy for most of it) and `COPY` 97-110 MB/s, and a
 * read of the text form of `bytea` (hex, decoded by the client) ran at ~50 MB/s. Chunked `bytea` rather
 * than large objects: large objects live outside the schema (a dropped schema would leave them behind,
 * and `pg_largeobject` is shared by every deployment in the database), and `lo_put` stored 32-36 MB/s.
 */
import { createHash, randomUUID } from "node:crypto"
import { ArchiveStore, SourceError, StorageError } from "@kiln/core"
import { Deferred, Duration, Effect, Exit, Layer, type Scope, Stream } from "effect"
import type pg from "pg"
import { from as copyFrom, to as copyTo } from "pg-copy-streams"
import { classifyError } from "./internal/classifyError.ts"
import { open, runOn } from "./internal/connection.ts"
import { dataOf, Malformed, rowsOf, writeAll } from "./internal/copyBinary.ts"
import { migrate } from "./internal/migrations.ts"
import { databaseNow } from "./internal/sql.ts"

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
 * 1 MiB rows, which the server toasts: rows of 8000 bytes stored inline were no faster through an upload,
 * and took 128 times as many rows. A row is what a put holds before it is sent.
 */
const chunkBytes = 1024 * 1024

const statements = {
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
    text: "SELECT size_bytes FROM archive_blobs WHERE sha256 = $1"
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

const copyChunks = "COPY archive_chunks (blob_id, idx, data) FROM STDIN (FORMAT binary)"
/** COPY takes no parameters: the sha256 is checked to be hex before it is put in the statement. */
const copyBlob = (sha256: string) =>
  `COPY (SELECT c.data FROM archive_blobs b JOIN archive_chunks c USING (blob_id) WHERE b.sha256 = '${sha256}' ORDER BY c.idx) TO STDOUT (FORMAT binary)`
const isSha256 = (value: string) => /^[0-9a-f]{64}$/.test(value)

const unavailable = (message: string) => (cause: StorageError.StorageError) =>
  new SourceError.SourceError({ reason: "Unavailable", message: `${message}: ${cause.message}`, cause })

/** Streams COPY data into a `COPY … FROM STDIN`, as fast as the connection takes it. */
const copyIn = <E>(client: pg.PoolClient, text: string, data: Stream.Stream<Uint8Array, E>) =>
  Effect.gen(function* () {
    const outcome = Deferred.makeUnsafe<void, StorageError.StorageError>()
    const sink = client.query(copyFrom(text))
    sink.on("error", (cause) => Deferred.doneUnsafe(outcome, Exit.fail(classifyError(cause))))
    sink.on("finish", () => Deferred.doneUnsafe(outcome, Exit.void))
    yield* writeAll(sink, data, Deferred.await(outcome))
    sink.end()
    yield* Deferred.await(outcome)
  })

/**
 * A connection for the life of the scope, given back to the pool only when `clean` says it is idle at the
 * end and the scope succeeded; otherwise closed, which also rolls back what it had not committed.
 */
const connection = (
  checkout: Effect.Effect<pg.PoolClient, StorageError.StorageError>,
  clean: () => boolean
) =>
  Effect.acquireRelease(checkout, (client, exit) =>
    Effect.sync(() => client.release(Exit.isSuccess(exit) && clean() ? undefined : true))
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
      poolSize: options.poolSize ?? 4
    })
    yield* migrate(db, schema)

    const put = <E>({ body, complete }: ArchiveStore.ArchiveUpload<E>) =>
      Effect.gen(function* () {
        let committed = false
        const client = yield* connection(db.checkout, () => committed)
        const run = runOn(client)
        yield* run({ text: "BEGIN" })
        const blobId = randomUUID()
        const hash = createHash("sha256")
        let sizeBytes = 0
        const hashed = Stream.map(body, (bytes) => {
          hash.update(bytes)
          sizeBytes += bytes.length
          return bytes
        })
        yield* copyIn(client, copyChunks, rowsOf(blobId, chunkBytes)(hashed))
        const blob: ArchiveStore.StoredBlob = { sha256: hash.digest("hex"), sizeBytes }
        if (complete !== undefined) yield* complete(blob)
        const [named] = yield* run<{ readonly blob_id: string }>(statements.name, [
          blob.sha256,
          blobId,
          sizeBytes,
          chunkBytes
        ])
        // Stored already: this put's copy goes, in the transaction that wrote it.
        if (named?.blob_id !== blobId) yield* run(statements.dropChunks, [blobId])
        yield* run({ text: "COMMIT" })
        committed = true
        return blob
      }).pipe(
        Effect.scoped,
        Effect.mapError((error) =>
          error instanceof StorageError.StorageError
            ? unavailable("the archive store could not store the archive")(error)
            : error
        )
      )

    const sizeOf = (sha256: string) =>
      Effect.map(
        db.run<{ readonly size_bytes: number }>(statements.blob, [sha256]),
        (rows) => rows[0]?.size_bytes
      )

    const has = (sha256: string) =>
      Effect.mapError(
        Effect.map(sizeOf(sha256), (size) => size !== undefined),
        unavailable("the archive store could not look up an archive")
      )

    const read = (sha256: string): Stream.Stream<Uint8Array, SourceError.SourceError> =>
      Stream.unwrap(
        Effect.gen(function* () {
          const failed = unavailable("the archive store could not read an archive")
          const size = isSha256(sha256) ? yield* Effect.mapError(sizeOf(sha256), failed) : undefined
          if (size === undefined) {
            return yield* new SourceError.SourceError({
              reason: "Missing",
              message: `archive ${sha256.slice(0, 8)} is not stored`
            })
          }
          const damaged = new SourceError.SourceError({
            reason: "Unavailable",
            message: `archive ${sha256.slice(0, 8)} is damaged or was removed while it was read`
          })
          // A reader that stops early leaves the COPY running: that connection is closed, not reused.
          let ended = false
          const client = yield* Effect.mapError(
            connection(db.checkout, () => ended),
            failed
          )
          const source = client.query(copyTo(copyBlob(sha256)))
          let seen = 0
          return dataOf(Stream.fromAsyncIterable(source, (cause) => failed(classifyError(cause)))).pipe(
            Stream.mapError((error) => (error instanceof Malformed ? damaged : error)),
            Stream.map((bytes) => {
              seen += bytes.length
              return bytes
            }),
            Stream.concat(
              Stream.fromEffect(
                Effect.suspend(() => {
                  ended = true
                  return seen === size ? Effect.void : Effect.fail(damaged)
                })
              ).pipe(Stream.drain)
            )
          )
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
