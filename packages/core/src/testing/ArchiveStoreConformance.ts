/**
 * The archive store conformance suite: what every backend of `ArchiveStore` promises (a directory,
 * PostgreSQL, an object store). A backend's test file calls it with a function that makes a fresh, empty
 * store:
 *
 * ```ts
 * import { ArchiveStoreConformance } from "@kiln/core/testing"
 * ArchiveStoreConformance.all("directory", () => ArchiveStore.layer({ directory: tempDir() }))
 * ```
 */
import { createHash, randomBytes } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, type Layer, type Scope, Stream } from "effect"
import { ArchiveStore, type StoredBlob } from "../ArchiveStore.ts"
import { SourceError } from "../SourceError.ts"

/** Makes a fresh, empty archive store each time it is called. */
export type MakeArchiveStore = () => Layer.Layer<ArchiveStore, unknown>

const test =
  (make: MakeArchiveStore) =>
  (name: string, body: () => Effect.Effect<void, unknown, ArchiveStore | Scope.Scope>) =>
    it.live(name, () => Effect.provide(body(), make()), 60_000)

/** Random bytes (nothing on the way can compress them), what a store must answer for them, and a body. */
export const blobOf = (size: number) => {
  const bytes = randomBytes(size)
  const blob: StoredBlob = { sha256: createHash("sha256").update(bytes).digest("hex"), sizeBytes: size }
  return { bytes, blob, body: inPieces(bytes) }
}

/** The bytes as a body in chunks of `size`. */
export const inPieces = (bytes: Uint8Array, size = 64 * 1024): Stream.Stream<Uint8Array> =>
  Stream.fromIterable(
    Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size))
  )

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

const expectStored = (blob: StoredBlob, bytes: Uint8Array) =>
  Effect.gen(function* () {
    const store = yield* ArchiveStore
    expect(yield* store.has(blob.sha256)).toBe(true)
    const read = yield* readAll(store.read(blob.sha256))
    expect(read.length).toBe(bytes.length)
    expect(read.equals(bytes)).toBe(true)
  })

/** A body that stops halfway and never ends, and an effect that waits until its half has been read. */
const stallingHalfway = (bytes: Uint8Array) =>
  Effect.map(Deferred.make<void>(), (halfway) => ({
    body: Stream.concat(
      inPieces(bytes.subarray(0, bytes.length / 2)).pipe(
        Stream.ensuring(Deferred.succeed(halfway, undefined))
      ),
      Stream.never
    ),
    halfway: Deferred.await(halfway)
  }))

const allOf = (sha256s: ReadonlyArray<string>) => [...new Set(sha256s)].sort()

/** Every blob stored, whenever it was put (a moment ago included). */
const everyBlob = Effect.andThen(
  Effect.sleep("20 millis"),
  ArchiveStore.use((store) => store.stale(Duration.zero, undefined, 100))
)

export const all = (name: string, make: MakeArchiveStore): void => {
  describe(`${name} › archive store`, () => {
    const t = test(make)

    t("stores a multi-megabyte blob as it streams in, names it by its SHA-256, and reads it back", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        // Not a multiple of any chunk size a backend is likely to use.
        const { bytes, blob, body } = blobOf(5 * 1024 * 1024 + 12_345)
        yield* expectAbsent(blob.sha256)
        expect(yield* store.put({ body })).toEqual(blob)
        yield* expectStored(blob, bytes)
      })
    )

    t("stores an empty blob", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const { bytes, blob, body } = blobOf(0)
        expect(yield* store.put({ body })).toEqual(blob)
        yield* expectStored(blob, bytes)
      })
    )

    t("stores the same bytes once, however often they are put", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const { bytes, blob, body } = blobOf(300_000)
        expect(yield* store.put({ body })).toEqual(blob)
        expect(yield* store.put({ body })).toEqual(blob)
        yield* expectStored(blob, bytes)
        expect(yield* everyBlob).toEqual([blob.sha256])
      })
    )

    t("concurrent puts of one blob all succeed and leave one, whole", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const { bytes, blob, body } = blobOf(2 * 1024 * 1024)
        const answers = yield* Effect.forEach(Array.from({ length: 4 }), () => store.put({ body }), {
          concurrency: "unbounded"
        })
        expect(answers).toEqual(answers.map(() => blob))
        yield* expectStored(blob, bytes)
        expect(yield* everyBlob).toEqual([blob.sha256])
      })
    )

    t("makes a blob visible only once complete accepts it, and tells complete what it stored", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const { bytes, blob, body } = blobOf(1024 * 1024 + 1)
        const asked = yield* Deferred.make<StoredBlob>()
        const accept = yield* Deferred.make<void>()
        const fiber = yield* Effect.forkChild(
          store.put({
            body,
            complete: (stored) => Effect.andThen(Deferred.succeed(asked, stored), Deferred.await(accept))
          })
        )
        expect(yield* Deferred.await(asked)).toEqual(blob)
        yield* Effect.sleep("100 millis")
        yield* expectAbsent(blob.sha256)
        yield* Deferred.succeed(accept, undefined)
        expect(yield* Fiber.join(fiber)).toEqual(blob)
        yield* expectStored(blob, bytes)
      })
    )

    t("stores nothing when complete refuses, and fails with its error", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const { blob, body } = blobOf(1024 * 1024)
        const refusal = new SourceError({ reason: "InvalidArchive", message: "not a tar" })
        expect(yield* Effect.flip(store.put({ body, complete: () => Effect.fail(refusal) }))).toBe(refusal)
        yield* expectAbsent(blob.sha256)
      })
    )

    t("keeps a stored blob when a later put of it is refused", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const { bytes, blob, body } = blobOf(100_000)
        yield* store.put({ body })
        const refusal = new SourceError({ reason: "InvalidArchive", message: "not a tar" })
        expect(yield* Effect.flip(store.put({ body, complete: () => Effect.fail(refusal) }))).toBe(refusal)
        yield* expectStored(blob, bytes)
      })
    )

    t("an interrupted put leaves nothing readable, and a later put stores the blob", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const { bytes, blob, body } = blobOf(3 * 1024 * 1024)
        const stalling = yield* stallingHalfway(bytes)
        const fiber = yield* Effect.forkChild(store.put({ body: stalling.body }))
        yield* stalling.halfway
        yield* Effect.sleep("100 millis")
        yield* Fiber.interrupt(fiber)
        yield* expectAbsent(blob.sha256)
        expect(yield* everyBlob).toEqual([])
        expect(yield* store.put({ body })).toEqual(blob)
        yield* expectStored(blob, bytes)
      })
    )

    t("a put interrupted while complete decides leaves nothing", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const { blob, body } = blobOf(1024 * 1024)
        const deciding = yield* Deferred.make<void>()
        const fiber = yield* Effect.forkChild(
          store.put({
            body,
            complete: () => Effect.andThen(Deferred.succeed(deciding, undefined), Effect.never)
          })
        )
        yield* Deferred.await(deciding)
        yield* Fiber.interrupt(fiber)
        yield* expectAbsent(blob.sha256)
      })
    )

    t("a put whose body fails stores nothing and fails with the body's error", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const { bytes, blob } = blobOf(2 * 1024 * 1024)
        const reset = new SourceError({ reason: "Unavailable", message: "connection reset" })
        const failing = Stream.concat(inPieces(bytes.subarray(0, 1024 * 1024)), Stream.fail(reset))
        expect(yield* Effect.flip(store.put({ body: failing }))).toBe(reset)
        yield* expectAbsent(blob.sha256)
        expect(yield* everyBlob).toEqual([])
      })
    )

    t("answers Missing for a blob it never stored", () => expectAbsent("0".repeat(64)))

    t("lists the blobs put longer ago than a duration, in sha256 order, a page at a time", () =>
      Effect.gen(function* () {
        const store = yield* ArchiveStore
        const blobs = [blobOf(10), blobOf(20), blobOf(30)]
        yield* Effect.forEach(blobs, ({ body }) => store.put({ body }))
        const names = allOf(blobs.map(({ blob }) => blob.sha256))
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
        const kept = blobOf(1000)
        const gone = blobOf(2000)
        const fresh = blobOf(3000)
        yield* store.put({ body: kept.body })
        yield* store.put({ body: gone.body })
        yield* Effect.sleep("400 millis")
        yield* store.put({ body: fresh.body })
        const old = Duration.millis(300)
        const names = [kept, gone, fresh].map(({ blob }) => blob.sha256)
        expect(yield* store.stale(old, undefined, 10)).toEqual(allOf(names.slice(0, 2)))
        expect(yield* store.remove(names, Duration.hours(1))).toEqual([])
        yield* store.put({ body: kept.body })
        expect(yield* store.remove(names, old)).toEqual([gone.blob.sha256])
        yield* expectStored(kept.blob, kept.bytes)
        yield* expectStored(fresh.blob, fresh.bytes)
        yield* expectAbsent(gone.blob.sha256)
        expect(yield* store.remove([gone.blob.sha256], old)).toEqual([])
      })
    )
  })
}
