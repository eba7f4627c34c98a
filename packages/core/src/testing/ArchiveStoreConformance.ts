/**
 * The archive store conformance suite: what every backend of `ArchiveStore` promises (a directory,
 * PostgreSQL, an object store). A backend's test file calls it with a function that makes a fresh, empty
 * store:
 *
 * ```ts
 * import { ArchiveStoreConformance } from "@kiln/core/testing"
 * ArchiveStoreConformance.all("directory", () => ArchiveStore.ArchiveStore.layer({ directory: tempDir() }))
 * ```
 */
import { createHash, randomBytes } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, type Layer, type Scope, Stream } from "effect"
import { type ArchiveBlob, ArchiveStore } from "../ArchiveStore.ts"
import { SourceError } from "../SourceError.ts"

/** Makes a fresh, empty archive store each time it is called. */
export type MakeArchiveStore = () => Layer.Layer<ArchiveStore, unknown>

const test =
  (make: MakeArchiveStore) =>
  (name: string, body: () => Effect.Effect<void, unknown, ArchiveStore | Scope.Scope>) =>
    it.live(name, () => Effect.provide(body(), make()), 60_000)

/** Random bytes (so nothing on the way can compress them) and their blob, the body in 64 KiB chunks. */
export const blobOf = (size: number): { readonly bytes: Buffer; readonly blob: ArchiveBlob } => {
  const bytes = randomBytes(size)
  return {
    bytes,
    blob: {
      sha256: createHash("sha256").update(bytes).digest("hex"),
      sizeBytes: size,
      body: chunked(bytes)
    }
  }
}

const chunked = (bytes: Uint8Array, size = 64 * 1024): Stream.Stream<Uint8Array, SourceError> =>
  Stream.fromIterable(
    Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size))
  )

/** A body that fails the test if it is read. */
const unread = Stream.fromEffect(Effect.die("the body of a stored blob was read again"))

export const readAll = (stream: Stream.Stream<Uint8Array, SourceError>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => Buffer.concat(chunks))

const expectAbsent = (sha256: string) =>
  Effect.gen(function* () {
    const store = yield* ArchiveStore
    expect(yield* store.has(sha256)).toBe(false)
    const error = yield* Effect.flip(readAll(store.read(sha256)))
    expect(error).toBeInstanceOf(SourceError)
    expect(error.reason).toBe("Missing")
  })

export const all = (name: string, make: MakeArchiveStore): void => {
  describe(`${name} › archive store`, () => {
    const t = test(make)

    t("stores a multi-megabyte blob whole and reads the same bytes back", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        // Not a multiple of any chunk size a backend is likely to use.
        const { bytes, blob } = blobOf(5 * 1024 * 1024 + 12_345)
        yield* expectAbsent(blob.sha256)
        yield* store.put(blob)
        expect(yield* store.has(blob.sha256)).toBe(true)
        const read = yield* readAll(store.read(blob.sha256))
        expect(read.length).toBe(bytes.length)
        expect(read.equals(bytes)).toBe(true)
      })
    )

    t("stores an empty blob", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const { blob } = blobOf(0)
        yield* store.put(blob)
        expect(yield* store.has(blob.sha256)).toBe(true)
        expect((yield* readAll(store.read(blob.sha256))).length).toBe(0)
      })
    )

    t("stores a blob once: putting it again reads no body and keeps the bytes", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const { bytes, blob } = blobOf(300_000)
        yield* store.put(blob)
        yield* store.put({ ...blob, body: unread })
        expect((yield* readAll(store.read(blob.sha256))).equals(bytes)).toBe(true)
      })
    )

    t("concurrent puts of one blob all succeed and leave it whole", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const { bytes, blob } = blobOf(2 * 1024 * 1024)
        yield* Effect.forEach(Array.from({ length: 4 }), () => store.put(blob), { concurrency: "unbounded" })
        expect((yield* readAll(store.read(blob.sha256))).equals(bytes)).toBe(true)
      })
    )

    t("an interrupted put leaves nothing readable, and a later put stores the blob", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const { bytes, blob } = blobOf(3 * 1024 * 1024)
        const started = yield* Deferred.make<void>()
        const half = bytes.subarray(0, bytes.length / 2)
        const stalled = Stream.concat(
          chunked(half).pipe(Stream.ensuring(Deferred.succeed(started, undefined))),
          Stream.never
        )
        const fiber = yield* Effect.forkChild(store.put({ ...blob, body: stalled }))
        yield* Deferred.await(started)
        yield* Effect.sleep("100 millis")
        yield* Fiber.interrupt(fiber)
        yield* expectAbsent(blob.sha256)
        yield* store.put(blob)
        expect((yield* readAll(store.read(blob.sha256))).equals(bytes)).toBe(true)
      })
    )

    t("a put whose body fails stores nothing and fails with the body's error", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const { bytes, blob } = blobOf(2 * 1024 * 1024)
        const reset = new SourceError({ reason: "Unavailable", message: "connection reset" })
        const failing = Stream.concat(chunked(bytes.subarray(0, 1024 * 1024)), Stream.fail(reset))
        expect(yield* Effect.flip(store.put({ ...blob, body: failing }))).toBe(reset)
        yield* expectAbsent(blob.sha256)
      })
    )

    t("a body shorter or longer than its size stores nothing", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const { blob } = blobOf(1024 * 1024)
        for (const sizeBytes of [blob.sizeBytes + 1, blob.sizeBytes - 1]) {
          const error = yield* Effect.flip(store.put({ ...blob, sizeBytes }))
          expect(error.message).toContain("was not stored")
          yield* expectAbsent(blob.sha256)
        }
      })
    )

    t("answers Missing for a blob it never stored", () => expectAbsent("0".repeat(64)))

    t("lists the blobs put longer ago than a duration, in sha256 order, a page at a time", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const blobs = [blobOf(10), blobOf(20), blobOf(30)].map(({ blob }) => blob)
        yield* Effect.forEach(blobs, store.put)
        const names = blobs.map((blob) => blob.sha256).sort()
        expect(yield* store.stale(Duration.hours(1), undefined, 10)).toEqual([])
        yield* Effect.sleep("300 millis")
        const old = Duration.millis(200)
        expect(yield* store.stale(old, undefined, 10)).toEqual(names)
        expect(yield* store.stale(old, undefined, 2)).toEqual(names.slice(0, 2))
        expect(yield* store.stale(old, names[1], 2)).toEqual(names.slice(2))
      })
    )

    t("removes only blobs still stale: a put since the listing keeps one", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const kept = blobOf(1000).blob
        const gone = blobOf(2000).blob
        const fresh = blobOf(3000).blob
        yield* store.put(kept)
        yield* store.put(gone)
        yield* Effect.sleep("400 millis")
        yield* store.put(fresh)
        const old = Duration.millis(300)
        expect(yield* store.stale(old, undefined, 10)).toEqual([kept.sha256, gone.sha256].sort())
        expect(yield* store.remove([kept.sha256, gone.sha256, fresh.sha256], Duration.hours(1))).toEqual([])
        yield* store.put({ ...kept, body: unread })
        expect(yield* store.remove([kept.sha256, gone.sha256, fresh.sha256], old)).toEqual([gone.sha256])
        expect(yield* store.has(kept.sha256)).toBe(true)
        expect(yield* store.has(fresh.sha256)).toBe(true)
        yield* expectAbsent(gone.sha256)
        expect(yield* store.remove([gone.sha256], old)).toEqual([])
      })
    )
  })
}
