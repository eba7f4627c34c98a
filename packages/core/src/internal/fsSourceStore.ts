/**
 * The SourceStore on a local directory: `archives/<sha256>.tar.gz` holds validated uploads, `tmp/` the
 * uploads being received and the scratch git repositories of running operations. Everything under
 * `tmp/` belongs to one operation and is removed when it ends, however it ends.
 */
import { createHash, randomUUID } from "node:crypto"
import { mkdir, open, rename, rm, stat } from "node:fs/promises"
import { join, resolve } from "node:path"
import { ByteSize, Duration, Effect, Schema, Stream } from "effect"
import { RelativePath } from "../App.ts"
import type { AppVersion } from "../AppVersion.ts"
import * as GitUrl from "../GitUrl.ts"
import { SourceError } from "../SourceError.ts"
import type { GitRefusal, SourceStoreOptions, SourceStoreShape, StoredArchive } from "../SourceStore.ts"
import * as Git from "./git.ts"
import { gunzipFile, missingRoot, reroot, validate } from "./tarArchive.ts"

const unavailable = (message: string) => (cause: unknown) =>
  new SourceError({ reason: "Unavailable", message, cause })

const isRelativePath = Schema.is(RelativePath)

export const makeFsSourceStore = (options: SourceStoreOptions) =>
  Effect.gen(function* () {
    const directory = resolve(options.directory)
    const archives = join(directory, "archives")
    const scratch = join(directory, "tmp")
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
      try: () => Promise.all([mkdir(archives, { recursive: true }), mkdir(scratch, { recursive: true })]),
      catch: unavailable("the source store could not create its directories")
    })

    /** A fresh path under `tmp/`, removed with whatever was made there when the scope closes. */
    const scratchPath = Effect.acquireRelease(
      Effect.sync(() => join(scratch, randomUUID())),
      (path) => Effect.promise(() => rm(path, { recursive: true, force: true }).catch(() => undefined))
    )

    const archivePath = (sha256: string) => join(archives, `${sha256}.tar.gz`)

    const putArchive = <E>(body: Stream.Stream<Uint8Array, E>) =>
      Effect.gen(function* () {
        const temp = yield* scratchPath
        const received = yield* receive(body, temp, maxArchiveBytes)
        if (received.head[0] !== 0x1f || received.head[1] !== 0x8b)
          return yield* new SourceError({ reason: "InvalidArchive", message: "not a gzip-compressed tar" })
        yield* validate(gunzipFile(temp), limits)
        // Same bytes, same name: replacing an existing blob with its twin keeps one.
        yield* Effect.tryPromise({
          try: () => rename(temp, archivePath(received.sha256)),
          catch: unavailable("the source store could not store the archive")
        })
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
            const file = archivePath(commit)
            const exists = yield* Effect.tryPromise({
              try: () =>
                stat(file).then(
                  () => true,
                  (error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? false : Promise.reject(error))
                ),
              catch: unavailable("the source store could not read an archive")
            })
            if (!exists) return yield* missing(`archive ${short} is not in the source store`)
            return reroot(gunzipFile(file), root, short)
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

    return { putArchive, maxArchiveBytes, checkGit, resolveGit, context } satisfies SourceStoreShape
  })

/**
 * Writes the upload to `file` while hashing and counting it, and stops reading the moment it passes
 * `maxBytes`. Answers the first bytes too, for the gzip magic.
 */
const receive = <E>(body: Stream.Stream<Uint8Array, E>, file: string, maxBytes: number) =>
  Effect.gen(function* () {
    const write = unavailable("the source store could not write the archive")
    const handle = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => open(file, "wx"), catch: write }),
      (handle) => Effect.promise(() => handle.close().catch(() => undefined))
    )
    const hash = createHash("sha256")
    const head: Array<number> = []
    let size = 0
    yield* Stream.runForEach(body, (chunk) =>
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
        return Effect.tryPromise({
          try: async () => {
            for (let offset = 0; offset < chunk.length; )
              offset += (await handle.write(chunk, offset, chunk.length - offset)).bytesWritten
          },
          catch: write
        })
      })
    )
    // The blob must be on disk before its name says it is stored.
    yield* Effect.tryPromise({ try: () => handle.sync(), catch: write })
    return { sha256: hash.digest("hex"), size, head }
  }).pipe(Effect.scoped)
