/**
 * The SourceStore: validated uploads go to the `ArchiveStore` it is given, and `tmp/` under its directory
 * holds the uploads being received and the scratch git repositories of running operations. Everything
 * under `tmp/` belongs to one operation and is removed when it ends, however it ends.
 */
import { randomUUID } from "node:crypto"
import { mkdir, rm } from "node:fs/promises"
import { join, resolve } from "node:path"
import { ByteSize, type Cause, Deferred, Duration, Effect, Queue, Schema, Stream } from "effect"
import { RelativePath } from "../App.ts"
import type { AppVersion, CommitSha } from "../AppVersion.ts"
import { ArchiveStore } from "../ArchiveStore.ts"
import * as GitUrl from "../GitUrl.ts"
import { SourceError } from "../SourceError.ts"
import type {
  GitRefusal,
  ReferencedAmong,
  SourceStoreOptions,
  SourceStoreShape,
  StoredArchive
} from "../SourceStore.ts"
import { unavailable } from "./fileStreams.ts"
import * as Git from "./git.ts"
import { gunzip, missingRoot, reroot, validate } from "./tarArchive.ts"

const isRelativePath = Schema.is(RelativePath)

/** Chunks of an upload that may wait for the archive's check before the upload is read further. */
const checkAhead = 16

const notGzip = new SourceError({ reason: "InvalidArchive", message: "not a gzip-compressed tar" })

/** Whether the first bytes seen so far can begin a gzip stream. */
const isGzip = (head: ReadonlyArray<number>) =>
  (head.length < 1 || head[0] === 0x1f) && (head.length < 2 || head[1] === 0x8b)

/** Blobs a sweep asks about at once: the query language's cap on an `in` list. */
const sweepPage = 100

export const makeFsSourceStore = (options: SourceStoreOptions) =>
  Effect.gen(function* () {
    const archives = yield* ArchiveStore
    const directory = resolve(options.directory)
    const scratch = join(directory, "tmp")
    const gracePeriod = Duration.fromInputUnsafe(options.archiveGracePeriod ?? "1 hour")
    const maxArchiveBytes = options.maxArchiveBytes ?? 256 * 1024 ** 2
    const limits = {
      maxUnpackedBytes: options.maxUnpackedBytes ?? 2 * 1024 ** 3,
      maxEntries: options.maxEntries ?? 100_000
    }
    const git: Git.GitSettings = {
      localRepositories: (options.localRepositories ?? []).map((path) => resolve(path)),
      timeout: Duration.fromInputUnsafe(options.gitTimeout ?? "5 minutes")
    }
    yield* Effect.tryPromise({
      try: () => mkdir(scratch, { recursive: true }),
      catch: unavailable("the source store could not create its directories")
    })

    /** A fresh path under `tmp/`, removed with whatever was made there when the scope closes. */
    const scratchPath = Effect.acquireRelease(
      Effect.sync(() => join(scratch, randomUUID())),
      (path) => Effect.promise(() => rm(path, { recursive: true, force: true }).catch(() => undefined))
    )

    // The upload streams into the archive store as it arrives, and through the archive's check at the same
    // time (a queue hands each chunk over): the store keeps it only once the check has passed. Measured
    // with a 50 MB archive into PostgreSQL, which alone takes ~300 ms to store it, receiving, checking
    // and storing one after the other took 1.4 s.
    const putArchive = <E>(body: Stream.Stream<Uint8Array, E>) =>
      Effect.gen(function* () {
        const toCheck = yield* Queue.bounded<Uint8Array, Cause.Done>(checkAhead)
        const checked = yield* Deferred.make<void, SourceError>()
        // The check fails the put at once (interrupting the upload), and tells the store whether to keep it.
        const check = Effect.onExit(validate(gunzip(Stream.fromQueue(toCheck)), limits), (exit) =>
          Deferred.done(checked, exit)
        )
        let size = 0
        const head: Array<number> = []
        const counted = Stream.mapEffect(body, (chunk) =>
          Effect.suspend(() => {
            size += chunk.length
            if (size > maxArchiveBytes)
              return Effect.fail(
                new SourceError({
                  reason: "TooLarge",
                  message: `archive is larger than ${ByteSize.format(ByteSize.bytes(maxArchiveBytes))}`
                })
              )
            for (let i = 0; head.length < 2 && i < chunk.length; i++) head.push(chunk[i]!)
            if (!isGzip(head)) return Effect.fail(notGzip)
            return Effect.as(Queue.offer(toCheck, chunk), chunk)
          })
        )
        // The check's input ends only after a whole gzip has been received.
        const ending = Effect.suspend(() =>
          isGzip(head) && head.length === 2 ? Queue.end(toCheck) : Effect.fail(notGzip)
        )
        const [, stored] = yield* Effect.all(
          [
            check,
            archives.put({
              body: Stream.concat(counted, Stream.fromEffect(ending).pipe(Stream.drain)),
              complete: () => Deferred.await(checked)
            })
          ],
          { concurrency: "unbounded" }
        )
        return stored satisfies StoredArchive
      })

    const checkGit = (url: string, ref?: string): GitRefusal | undefined => {
      const urlIssue = GitUrl.check(url, git.localRepositories)
      if (urlIssue !== undefined) return { field: "url", issue: urlIssue }
      const refIssue = ref === undefined ? undefined : GitUrl.checkRef(ref)
      return refIssue === undefined ? undefined : { field: "ref", issue: refIssue }
    }

    /** The same refusal, before git runs: a source stored before the host's settings changed meets it. */
    const refused = (url: string, ref?: string) => {
      const refusal = checkGit(url, ref)
      if (refusal === undefined) return Effect.void
      const what =
        refusal.field === "url"
          ? `git URL ${JSON.stringify(Git.displayUrl(url))}`
          : `git ref ${JSON.stringify(ref)}`
      return Effect.fail(new SourceError({ reason: "Refused", message: `refused ${what}: ${refusal.issue}` }))
    }

    const resolveGit = (url: string, ref: string) =>
      Effect.gen(function* () {
        yield* refused(url, ref)
        const repository = yield* scratchPath
        yield* Git.init(repository, git)
        yield* Git.fetch(repository, url, ref, git)
        return yield* Git.fetchedCommit(repository, git)
      }).pipe(Effect.scoped)

    const context = (version: AppVersion, rootDirectory: string): Stream.Stream<Uint8Array, SourceError> =>
      Stream.unwrap(
        Effect.gen(function* () {
          const missing = (message: string) => new SourceError({ reason: "Missing", message })
          if (!isRelativePath(rootDirectory))
            return yield* missing(
              `root directory ${JSON.stringify(rootDirectory)} is not a relative path inside the source tree`
            )
          const commit = version.commitSha
          if (commit === null)
            return yield* missing(`app version ${version.id} is not ready: it has no commit yet`)
          const root = rootDirectory.split("/").filter((segment) => segment !== "" && segment !== ".")
          const short = commit.slice(0, 8)
          if (version.source.type === "archive") {
            if (!(yield* archives.has(commit)))
              return yield* missing(`archive ${short} is not in the source store`)
            return reroot(gunzip(archives.read(commit)), root, short)
          }
          const url = version.source.url
          yield* refused(url)
          const repository = yield* scratchPath
          yield* Git.init(repository, git)
          yield* Git.fetch(repository, url, commit, git)
          const path = root.join("/")
          if (path !== "") {
            const type = yield* Git.objectType(repository, commit, path, git)
            if (type !== "tree")
              return yield* missingRoot(
                path,
                type === undefined ? "does not exist" : "is not a directory",
                short
              )
          }
          return reroot(Git.archive(repository, commit, path, git), root, short)
        })
      )

    // Listing first, then asking, then removing only what is still stale: a version that names a blob is
    // created just after the blob is put (which makes it fresh), so it cannot miss its blob.
    const sweepArchives = (referencedAmong: ReferencedAmong) =>
      Effect.gen(function* () {
        const removed: Array<CommitSha> = []
        let after: string | undefined
        while (true) {
          const page = yield* archives.stale(gracePeriod, after, sweepPage)
          if (page.length === 0) return removed
          const referenced = yield* referencedAmong(page)
          const unreferenced = page.filter((sha256) => !referenced.has(sha256))
          if (unreferenced.length > 0) removed.push(...(yield* archives.remove(unreferenced, gracePeriod)))
          if (page.length < sweepPage) return removed
          after = page[page.length - 1]
        }
      })

    return {
      putArchive,
      maxArchiveBytes,
      checkGit,
      resolveGit,
      context,
      sweepArchives
    } satisfies SourceStoreShape
  })
