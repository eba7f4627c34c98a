/**
 * The archive store on a local directory: `<sha256>.tar.gz` per blob. A put writes a hidden partial file
 * as the body arrives, hashing it, and renames it into place once it is complete, on disk and accepted,
 * so a blob's name appears only with all of its bytes. A file's modification time is when its blob was
 * last put.
 */
import { createHash, randomUUID } from "node:crypto"
import { mkdir, readdir, rename, rm, stat, unlink, utimes } from "node:fs/promises"
import { join, resolve } from "node:path"
import { Clock, Duration, Effect } from "effect"
import type { ArchiveStoreShape, ArchiveUpload, StoredBlob } from "../ArchiveStore.ts"
import { SourceError } from "../SourceError.ts"
import { readFile, unavailable, writeFile } from "./fileStreams.ts"

const blobName = /^([0-9a-f]{64})\.tar\.gz$/

const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === "ENOENT"

export const makeDirectoryArchives = (directory: string) =>
  Effect.gen(function* () {
    const root = resolve(directory)
    yield* Effect.tryPromise({
      try: () => mkdir(root, { recursive: true }),
      catch: unavailable("the archive store could not create its directory")
    })
    const pathOf = (sha256: string) => join(root, `${sha256}.tar.gz`)

    /** When the blob was last put, in epoch milliseconds, or undefined when it is not stored. */
    const putAt = (sha256: string) =>
      Effect.tryPromise({
        try: () =>
          stat(pathOf(sha256)).then(
            (stats) => stats.mtimeMs,
            (error) => (isMissing(error) ? undefined : Promise.reject(error))
          ),
        catch: unavailable("the archive store could not read its directory")
      })

    const cutoff = (olderThan: Duration.Duration) =>
      Effect.map(Clock.currentTimeMillis, (now) => now - Duration.toMillis(olderThan))

    const put = <E>({ body, complete }: ArchiveUpload<E>) =>
      Effect.gen(function* () {
        const partial = yield* Effect.acquireRelease(
          Effect.sync(() => join(root, `.${randomUUID()}.partial`)),
          (path) => Effect.promise(() => rm(path, { force: true }).catch(() => undefined))
        )
        const hash = createHash("sha256")
        let sizeBytes = 0
        yield* writeFile(body, partial, {
          inspect: (chunk) =>
            Effect.sync(() => {
              hash.update(chunk)
              sizeBytes += chunk.length
            }),
          sync: true,
          failure: "the archive store could not store the archive"
        })
        const blob: StoredBlob = { sha256: hash.digest("hex"), sizeBytes }
        if (complete !== undefined) yield* complete(blob)
        const now = (yield* Clock.currentTimeMillis) / 1000
        // Stored already: that copy now counts as put, and this one goes with the scope.
        const stored = yield* Effect.tryPromise({
          try: () =>
            utimes(pathOf(blob.sha256), now, now).then(
              () => true,
              (error) => (isMissing(error) ? false : Promise.reject(error))
            ),
          catch: unavailable("the archive store could not store the archive")
        })
        // Same bytes, same name: replacing a twin that a concurrent put stored keeps one.
        if (!stored)
          yield* Effect.tryPromise({
            try: () => rename(partial, pathOf(blob.sha256)),
            catch: unavailable("the archive store could not store the archive")
          })
        return blob
      }).pipe(Effect.scoped)

    const has = (sha256: string) => Effect.map(putAt(sha256), (at) => at !== undefined)

    const read = (sha256: string) =>
      readFile(pathOf(sha256), (cause) =>
        isMissing(cause)
          ? new SourceError({ reason: "Missing", message: `archive ${sha256.slice(0, 8)} is not stored` })
          : unavailable("the archive store could not read an archive")(cause)
      )

    const stale = (olderThan: Duration.Duration, after: string | undefined, limit: number) =>
      Effect.gen(function* () {
        const before = yield* cutoff(olderThan)
        const names = yield* Effect.tryPromise({
          try: () => readdir(root),
          catch: unavailable("the archive store could not read its directory")
        })
        const candidates = names
          .flatMap((name) => blobName.exec(name)?.[1] ?? [])
          .filter((sha256) => after === undefined || sha256 > after)
          .sort()
        const found: Array<string> = []
        for (const sha256 of candidates) {
          if (found.length >= limit) break
          const at = yield* putAt(sha256)
          if (at !== undefined && at < before) found.push(sha256)
        }
        return found
      })

    const remove = (sha256s: ReadonlyArray<string>, olderThan: Duration.Duration) =>
      Effect.gen(function* () {
        const before = yield* cutoff(olderThan)
        const removed: Array<string> = []
        for (const sha256 of sha256s) {
          const at = yield* putAt(sha256)
          if (at === undefined || at >= before) continue
          const gone = yield* Effect.tryPromise({
            try: () =>
              unlink(pathOf(sha256)).then(
                () => true,
                (error) => (isMissing(error) ? false : Promise.reject(error))
              ),
            catch: unavailable("the archive store could not remove an archive")
          })
          if (gone) removed.push(sha256)
        }
        return removed
      })

    return { put, has, read, stale, remove } satisfies ArchiveStoreShape
  })
