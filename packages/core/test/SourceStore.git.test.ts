import { randomBytes } from "node:crypto"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { SourceStore } from "@kiln/core"
import { Deferred, Effect, Fiber, Stream } from "effect"
import {
  collect,
  extract,
  gitProcesses,
  gitVersion,
  leftovers,
  list,
  repository,
  run,
  store
} from "./SourceStore.fixtures.ts"

const repo = repository()

describe("SourceStore git", () => {
  it.live("resolves a branch, a tag and a full sha to the commit with its author and message", () => {
    const { directory, layer } = store()
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      expect(yield* source.resolveGit(repo.path, "main")).toEqual({
        commitSha: repo.second,
        author: "Ada Lovelace <ada@example.com>",
        message: "second\n\nwith a body"
      })
      const first = { commitSha: repo.first, author: "Ada Lovelace <ada@example.com>", message: "first" }
      expect(yield* source.resolveGit(`file://${repo.path}`, "old")).toEqual(first)
      expect(yield* source.resolveGit(repo.path, "v1")).toEqual(first)
      expect(yield* source.resolveGit(repo.path, "refs/tags/v1")).toEqual(first)
      expect(yield* source.resolveGit(repo.path, repo.first)).toEqual(first)
      expect(leftovers(directory)).toEqual([])
    }).pipe(Effect.provide(layer))
  })

  it.live(
    "answers GitFailed for an unknown ref, an unknown commit and a repository that is not there",
    () => {
      const { directory, layer } = store()
      return Effect.gen(function* () {
        const source = yield* SourceStore.SourceStore
        const ref = yield* Effect.flip(source.resolveGit(repo.path, "nope"))
        expect(ref.reason).toBe("GitFailed")
        expect(ref.message).toBe(`ref "nope" does not exist in ${repo.path}`)
        const sha = yield* Effect.flip(source.resolveGit(repo.path, "0".repeat(40)))
        expect(sha.message).toBe(`commit ${"0".repeat(40)} does not exist in ${repo.path}`)
        const gone = yield* Effect.flip(source.resolveGit(join(repo.path, "gone"), "main"))
        expect(gone.reason).toBe("GitFailed")
        expect(gone.message).toBe(
          `could not fetch ref "main" from ${repo.path}/gone: '${repo.path}/gone' does not appear to be a git repository`
        )
        const option = yield* Effect.flip(source.resolveGit(repo.path, "--upload-pack=touch /tmp/x"))
        expect(option.message).toBe(`"--upload-pack=touch /tmp/x" is not a valid git ref`)
        expect(leftovers(directory)).toEqual([])
      }).pipe(Effect.provide(layer))
    }
  )

  it.live("kills a fetch that takes longer than gitTimeout, and answers Unavailable", () => {
    const { directory, layer } = store({ gitTimeout: "1 millis" })
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      const error = yield* Effect.flip(source.resolveGit(repo.path, "main"))
      expect(error.reason).toBe("Unavailable")
      expect(error.retryable).toBe(true)
      expect(error.message).toBe(`git took longer than 1ms to fetch from ${repo.path}`)
      expect(gitProcesses(directory)).toEqual([])
      expect(leftovers(directory)).toEqual([])
    }).pipe(Effect.provide(layer))
  })

  it.live("refuses local repositories when they are not allowed, and unknown transports always", () => {
    const { layer } = store({ allowLocalRepositories: false })
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      for (const url of [repo.path, `file://${repo.path}`]) {
        const error = yield* Effect.flip(source.resolveGit(url, "main"))
        expect(error.reason).toBe("GitFailed")
        expect(error.message).toContain(`local repositories are not allowed here: ${url}`)
        const context = yield* Effect.flip(collect(source.context(gitVersion(url, repo.second), "")))
        expect(context.message).toContain("local repositories are not allowed here")
      }
      for (const url of [
        "ext::sh -c touch% /tmp/pwned",
        "ftp://example.com/repo.git",
        "relative/path",
        "-u"
      ]) {
        const error = yield* Effect.flip(source.resolveGit(url, "main"))
        expect(error.reason).toBe("GitFailed")
      }
    }).pipe(Effect.provide(layer))
  })

  it.live("never shows the credentials of a URL", () => {
    const { layer } = store({ allowLocalRepositories: false })
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      // Nothing listens on port 1, so git fails at once, after reading the URL.
      for (const url of ["https://user:secret@127.0.0.1:1/repo.git", "http://secret@127.0.0.1:1/repo.git"]) {
        const error = yield* Effect.flip(source.resolveGit(url, "main"))
        expect(error.reason).toBe("GitFailed")
        expect(error.message).toContain("127.0.0.1:1/repo.git")
        expect(error.message).not.toContain("secret")
      }
      const local = yield* Effect.flip(source.resolveGit("file://user:secret@localhost/srv/repo", "main"))
      expect(local.message).not.toContain("secret")
    }).pipe(Effect.provide(layer))
  })

  it.live("answers the tree of a commit as the context, at a root directory too", () => {
    const { directory, layer } = store()
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      const second = yield* collect(source.context(gitVersion(repo.path, repo.second), ""))
      expect(list(second)).toEqual(["a.txt", "sub/", "sub/deeper/", "sub/deeper/d.txt", "sub/s.txt"])
      expect(extract(second)).toEqual({
        "a.txt": "two\n",
        "sub/s.txt": "sub two\n",
        "sub/deeper/d.txt": "deep\n"
      })

      const first = yield* collect(source.context(gitVersion(`file://${repo.path}`, repo.first), ""))
      expect(extract(first)).toEqual({ "a.txt": "one\n", "sub/s.txt": "sub one\n" })

      const sub = yield* collect(source.context(gitVersion(repo.path, repo.second), "sub"))
      expect(list(sub)).toEqual(["deeper/", "deeper/d.txt", "s.txt"])
      expect(extract(sub)).toEqual({ "s.txt": "sub two\n", "deeper/d.txt": "deep\n" })

      const missing = yield* Effect.flip(
        collect(source.context(gitVersion(repo.path, repo.first), "sub/deeper"))
      )
      expect(missing.reason).toBe("Missing")
      expect(missing.message).toBe(`root directory "sub/deeper" does not exist in ${repo.first.slice(0, 8)}`)
      const file = yield* Effect.flip(collect(source.context(gitVersion(repo.path, repo.first), "a.txt")))
      expect(file.message).toBe(`root directory "a.txt" is not a directory in ${repo.first.slice(0, 8)}`)

      const unknown = yield* Effect.flip(collect(source.context(gitVersion(repo.path, "1".repeat(40)), "")))
      expect(unknown.reason).toBe("GitFailed")
      expect(leftovers(directory)).toEqual([])
    }).pipe(Effect.provide(layer))
  })

  it.live("gives the same bytes for the same commit", () => {
    const { layer } = store()
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      const once = yield* collect(source.context(gitVersion(repo.path, repo.second), "sub"))
      const twice = yield* collect(source.context(gitVersion(repo.path, repo.second), "sub"))
      expect(once.equals(twice)).toBe(true)
    }).pipe(Effect.provide(layer))
  })

  describe("with a context larger than a pipe holds", () => {
    const big = repository()
    writeFileSync(join(big.path, "big.bin"), randomBytes(8 * 1024 * 1024))
    run("git", ["add", "big.bin"], big.path)
    run("git", ["commit", "--quiet", "-m", "big"], big.path)
    const head = run("git", ["rev-parse", "HEAD"], big.path).toString("utf8").trim()

    /** Starts reading the context, and waits until the first bytes arrived and git is still writing. */
    const startReading = (directory: string, consume: (chunk: Uint8Array) => Effect.Effect<void>) =>
      Effect.gen(function* () {
        const source = yield* SourceStore.SourceStore
        const started = yield* Deferred.make<void>()
        const fiber = yield* source.context(gitVersion(big.path, head), "").pipe(
          Stream.runForEach((chunk) =>
            Deferred.succeed(started, undefined).pipe(Effect.andThen(consume(chunk)))
          ),
          Effect.forkChild
        )
        yield* Deferred.await(started)
        expect(gitProcesses(directory).length).toBeGreaterThan(0)
        return fiber
      })

    it.live("interrupting the context stream kills git and removes the scratch repository", () => {
      const { directory, layer } = store()
      return Effect.gen(function* () {
        const fiber = yield* startReading(directory, () => Effect.never)
        yield* Fiber.interrupt(fiber)
        expect(gitProcesses(directory)).toEqual([])
        expect(leftovers(directory)).toEqual([])
      }).pipe(Effect.provide(layer))
    })

    it.live("the context stream fails with a SourceError when git dies midway", () => {
      const { directory, layer } = store()
      return Effect.gen(function* () {
        let killed = false
        const fiber = yield* startReading(directory, () =>
          Effect.sync(() => {
            if (killed) return
            killed = true
            for (const pid of gitProcesses(directory)) process.kill(pid, "SIGKILL")
          })
        )
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error).toBeInstanceOf(SourceStore.SourceError)
        expect(error.reason).toBe("GitFailed")
        expect(error.message).toBe(`git archive of ${head.slice(0, 8)} failed: killed by SIGKILL`)
        expect(gitProcesses(directory)).toEqual([])
        expect(leftovers(directory)).toEqual([])
      }).pipe(Effect.provide(layer))
    })

    it.live("reading the whole context gives every byte", () => {
      const { layer } = store()
      return Effect.gen(function* () {
        const source = yield* SourceStore.SourceStore
        const context = yield* collect(source.context(gitVersion(big.path, head), ""))
        expect(list(context)).toContain("big.bin")
        expect(context.length).toBeGreaterThan(8 * 1024 * 1024)
      }).pipe(Effect.provide(layer))
    })
  })
})
