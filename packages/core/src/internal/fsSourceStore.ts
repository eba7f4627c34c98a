/**
 * The SourceStore: validated uploads go to the `ArchiveStore` it is given, and `tmp/` under its directory
 * holds the uploads being received and the scratch git repositories of running operations. Everything
 * under `tmp/` belongs to one operation and is removed when it ends, however it ends.
 */
import { createHash, randomUUID } from "node:crypto"
import { mkdir, rm } from "node:fs/promises"
import { join, resolve } from "node:path"
import { ByteSize, Duration, Effect, Schema, Stream } from "effect"
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
import { readFile, unavailable, writeFile } from "./fileStreams.ts"
import * as Git from "./git.ts"
import { gunzip, missingRoot, reroot, validate } from "./tarArchive.ts"

const isRelativePath = Schema.is(RelativePath)

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

    const putArchive = <E>(body: Stream.Stream<Uint8Array, E>) =>
      Effect.gen(function* () {
        const temp = yield* scratchPath
        const received = yield* receive(body, temp, maxArchiveBytes)
        if (received.head[0] !== 0x1f || received.head[1] !== 0x8b)
          return yield* new SourceError({ reason: "InvalidArchive", message: "not a gzip-compressed tar" })
        const bytes = readFile(temp, unavailable("the source store could not read an upload"))
        yield* validate(gunzip(bytes), limits)
        yield* archives.put({ sha256: received.sha256, sizeBytes: received.size, body: bytes })
        return { sha256: received.sha256, sizeBytes: received.size } satisfies StoredArchive
      }).pipe(Effect.scoped)

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

/**
 * Writes the upload to `file` while hashing and counting it, and stops reading the moment it passes
 * `maxBytes`. Answers the first bytes too, for the gzip magic. The file is scratch, so it is not synced:
 * the archive store makes the stored copy durable.
 */
const receive = <E>(body: Stream.Stream<Uint8Array, E>, file: string, maxBytes: number) =>
  Effect.gen(function* () {
    const hash = createHash("sha256")
    const head: Array<number> = []
    let size = 0
    yield* writeFile(body, file, {
      inspect: (chunk) =>
        Effect.suspend(() => {
          size += chunk.length
          if (size > maxBytes)
            return Effect.fail(
              new SourceError({
                reason: "TooLarge",
                message: `archive is larger than ${ByteSize.format(ByteSize.bytes(maxBytes))}`
              })
            )
          hash.update(chunk)
          for (let i = 0; head.length < 2 && i < chunk.length; i++) head.push(chunk[i]!)
          return Effect.void
        }),
      sync: false,
      failure: "the source store could not write the archive"
    })
    return { sha256: hash.digest("hex"), size, head }
  })
