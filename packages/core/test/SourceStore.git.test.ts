import { randomBytes } from "node:crypto"
import { existsSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { GitUrl, SourceStore } from "@kiln/core"
import { Deferred, Duration, Effect, Fiber, Stream } from "effect"
import * as Git from "../src/internal/git.ts"
import {
  collect,
  extract,
  gitProcesses,
  gitServer,
  gitVersion,
  leftovers,
  list,
  repository,
  run,
  store,
  tempDir
} from "./SourceStore.fixtures.ts"

const repo = repository()
const server = await gitServer({ redirects: { "/to-file": `file://${repo.path}` } })
/** The repository as a remote: what every test but the local ones fetches. */
const remote = server.urlOf(repo)

describe("SourceStore git", () => {
  it.live("resolves a branch, a tag and a full sha to the commit with its author and message", () => {
    const { directory, layer } = store()
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      expect(yield* source.resolveGit(remote, "main")).toEqual({
        commitSha: repo.second,
        author: "Ada Lovelace <ada@example.com>",
        message: "second\n\nwith a body"
      })
      const first = { commitSha: repo.first, author: "Ada Lovelace <ada@example.com>", message: "first" }
      expect(yield* source.resolveGit(remote, "old")).toEqual(first)
      expect(yield* source.resolveGit(remote, "v1")).toEqual(first)
      expect(yield* source.resolveGit(remote, "refs/tags/v1")).toEqual(first)
      expect(yield* source.resolveGit(remote, repo.first)).toEqual(first)
      expect(leftovers(directory)).toEqual([])
    }).pipe(Effect.provide(layer))
  })

  it.live(
    "answers GitFailed for an unknown ref, an unknown commit and a repository that is not there",
    () => {
      const { directory, layer } = store()
      return Effect.gen(function* () {
        const source = yield* SourceStore.SourceStore
        const ref = yield* Effect.flip(source.resolveGit(remote, "nope"))
        expect(ref.reason).toBe("GitFailed")
        expect(ref.message).toBe(`ref "nope" does not exist in ${remote}`)
        const sha = yield* Effect.flip(source.resolveGit(remote, "0".repeat(40)))
        expect(sha.message).toBe(`commit ${"0".repeat(40)} does not exist in ${remote}`)
        const gone = yield* Effect.flip(source.resolveGit(`${server.url}/gone`, "main"))
        expect(gone.reason).toBe("GitFailed")
        expect(gone.message).toBe(
          `could not fetch ref "main" from ${server.url}/gone: repository '${server.url}/gone/' not found`
        )
        expect(leftovers(directory)).toEqual([])
      }).pipe(Effect.provide(layer))
    }
  )

  it.live("kills a fetch that takes longer than gitTimeout, and answers Unavailable", () => {
    const { directory, layer } = store({ gitTimeout: "1 millis" })
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      const error = yield* Effect.flip(source.resolveGit(remote, "main"))
      expect(error.reason).toBe("Unavailable")
      expect(error.retryable).toBe(true)
      expect(error.message).toBe(`git took longer than 1ms to fetch from ${remote}`)
      expect(gitProcesses(directory)).toEqual([])
      expect(leftovers(directory)).toEqual([])
    }).pipe(Effect.provide(layer))
  })

  describe("refusals, before git runs", () => {
    const marker = join(tempDir("marker"), "pwned")
    const hostile = [
      repo.path,
      `${repo.path}/.git`,
      "/etc",
      "/nonexistent/kiln",
      "relative/path",
      "./repo",
      "../repo",
      `file://${repo.path}`,
      "file:///etc",
      `ext::sh -c touch% ${marker}`,
      `ext::touch ${marker}`,
      `--upload-pack=touch ${marker}`,
      "-u",
      `${remote} --upload-pack=x`,
      "ftp://127.0.0.1/repo.git",
      "git://127.0.0.1/repo.git",
      "HTTPS://127.0.0.1/repo.git",
      "https://",
      "ssh://-oProxyCommand=id/repo",
      "ssh://-oProxyCommand=id@host/repo",
      "git@-oProxyCommand=id:repo",
      "git@host:-repo",
      "host:repo",
      "git@host/path:repo"
    ]

    it.live(
      "refuses every URL but an https, http, ssh or scp-like one, the same for paths that exist or not",
      () => {
        const { directory, layer } = store()
        return Effect.gen(function* () {
          const source = yield* SourceStore.SourceStore
          for (const url of hostile) {
            expect(source.checkGit(url, "main")).toEqual({ field: "url", issue: GitUrl.expected })
            const error = yield* Effect.flip(source.resolveGit(url, "main"))
            expect(error.reason).toBe("Refused")
            expect(error.message).toBe(`refused git URL ${JSON.stringify(url)}: ${GitUrl.expected}`)
            const context = yield* Effect.flip(collect(source.context(gitVersion(url, repo.second), "")))
            expect(context.message).toBe(error.message)
          }
          expect(existsSync(marker)).toBe(false)
          expect(leftovers(directory)).toEqual([])
        }).pipe(Effect.provide(layer))
      }
    )

    it.live("refuses a ref git would read as an option, a refspec or a revision expression", () => {
      const { layer } = store()
      return Effect.gen(function* () {
        const source = yield* SourceStore.SourceStore
        for (const ref of [
          `--upload-pack=touch ${marker}`,
          "-u",
          "+main:x",
          "main:x",
          "HEAD~1",
          "main^",
          "a b",
          "*"
        ]) {
          expect(source.checkGit(remote, ref)).toEqual({ field: "ref", issue: expect.any(String) })
          const error = yield* Effect.flip(source.resolveGit(remote, ref))
          expect(error.reason).toBe("Refused")
          expect(error.message).toMatch(/^refused git ref .*: expected a branch, tag or commit/)
        }
        expect(existsSync(marker)).toBe(false)
      }).pipe(Effect.provide(layer))
    })
  })

  it.live(
    "git itself refuses the file transport unless local repositories are allowed, and helpers always",
    () => {
      // Past the store's own check, as a URL it had let through would be: the second line of defence.
      const marker = join(tempDir("marker"), "pwned")
      const fetch = (url: string, localRepositories: ReadonlyArray<string>) =>
        Effect.gen(function* () {
          const settings = { localRepositories, timeout: Duration.seconds(30) }
          const repository = join(tempDir("scratch"), "repository")
          yield* Git.init(repository, settings)
          yield* Git.fetch(repository, url, "main", settings)
        })
      return Effect.gen(function* () {
        for (const url of [repo.path, `file://${repo.path}`])
          expect((yield* Effect.flip(fetch(url, []))).message).toContain("transport 'file' not allowed")
        const helper = yield* Effect.flip(fetch(`ext::sh -c touch% ${marker}`, [repo.path]))
        expect(helper.message).toContain("transport 'ext' not allowed")
        expect(existsSync(marker)).toBe(false)
        yield* fetch(repo.path, [dirname(repo.path)])
      })
    }
  )

  it.live("never follows a redirect to a file: URL, whether local repositories are allowed or not", () =>
    Effect.forEach([store(), store({ localRepositories: [dirname(repo.path)] })], ({ layer }) =>
      Effect.gen(function* () {
        const source = yield* SourceStore.SourceStore
        expect(source.checkGit(`${server.url}/to-file`)).toBeUndefined()
        const error = yield* Effect.flip(source.resolveGit(`${server.url}/to-file`, "main"))
        expect(error.reason).toBe("GitFailed")
        expect(error.message).toContain('Protocol "file" not supported')
        expect(error.message).not.toContain(repo.path)
      }).pipe(Effect.provide(layer))
    )
  )

  it.live("never shows the credentials of a URL", () => {
    const { layer } = store()
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      // Nothing listens on port 1, so git fails at once, after reading the URL.
      for (const url of ["https://user:secret@127.0.0.1:1/repo.git", "http://secret@127.0.0.1:1/repo.git"]) {
        const error = yield* Effect.flip(source.resolveGit(url, "main"))
        expect(error.reason).toBe("GitFailed")
        expect(error.message).toContain("127.0.0.1:1/repo.git")
        expect(error.message).not.toContain("secret")
      }
      const refused = yield* Effect.flip(source.resolveGit("file://user:secret@localhost/srv/repo", "main"))
      expect(refused.message).not.toContain("secret")
    }).pipe(Effect.provide(layer))
  })

  it.live("never shows a path of the server from git's own words", () => {
    const { directory, layer } = store()
    const config = join(tempDir("config"), "gitconfig")
    writeFileSync(config, "[broken\n")
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      process.env.GIT_CONFIG_GLOBAL = config
      const error = yield* Effect.flip(source.resolveGit(remote, "main")).pipe(
        Effect.ensuring(Effect.sync(() => delete process.env.GIT_CONFIG_GLOBAL))
      )
      expect(error.reason).toBe("GitFailed")
      expect(error.message).toContain("bad config line 1 in file (server path)")
      expect(error.message).not.toContain(config)
      expect(error.message).not.toContain(directory)
    }).pipe(Effect.provide(layer))
  })

  it.live("answers the tree of a commit as the context, at a root directory too", () => {
    const { directory, layer } = store()
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      const second = yield* collect(source.context(gitVersion(remote, repo.second), ""))
      expect(list(second)).toEqual(["a.txt", "sub/", "sub/deeper/", "sub/deeper/d.txt", "sub/s.txt"])
      expect(extract(second)).toEqual({
        "a.txt": "two\n",
        "sub/s.txt": "sub two\n",
        "sub/deeper/d.txt": "deep\n"
      })

      const first = yield* collect(source.context(gitVersion(remote, repo.first), ""))
      expect(extract(first)).toEqual({ "a.txt": "one\n", "sub/s.txt": "sub one\n" })

      const sub = yield* collect(source.context(gitVersion(remote, repo.second), "sub"))
      expect(list(sub)).toEqual(["deeper/", "deeper/d.txt", "s.txt"])
      expect(extract(sub)).toEqual({ "s.txt": "sub two\n", "deeper/d.txt": "deep\n" })

      const missing = yield* Effect.flip(
        collect(source.context(gitVersion(remote, repo.first), "sub/deeper"))
      )
      expect(missing.reason).toBe("Missing")
      expect(missing.message).toBe(`root directory "sub/deeper" does not exist in ${repo.first.slice(0, 8)}`)
      const file = yield* Effect.flip(collect(source.context(gitVersion(remote, repo.first), "a.txt")))
      expect(file.message).toBe(`root directory "a.txt" is not a directory in ${repo.first.slice(0, 8)}`)

      const unknown = yield* Effect.flip(collect(source.context(gitVersion(remote, "1".repeat(40)), "")))
      expect(unknown.reason).toBe("GitFailed")
      expect(leftovers(directory)).toEqual([])
    }).pipe(Effect.provide(layer))
  })

  it.live("gives the same bytes for the same commit", () => {
    const { layer } = store()
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      const once = yield* collect(source.context(gitVersion(remote, repo.second), "sub"))
      const twice = yield* collect(source.context(gitVersion(remote, repo.second), "sub"))
      expect(once.equals(twice)).toBe(true)
    }).pipe(Effect.provide(layer))
  })

  describe("local repositories, where the host allows their directory", () => {
    const allowed = dirname(repo.path)
    const outside = repository()
    const elsewhere = store({ localRepositories: [tempDir("elsewhere")] })

    it.live("reads a repository inside the directory by path or file:/// URL", () => {
      const { directory, layer } = store({ localRepositories: [allowed] })
      return Effect.gen(function* () {
        const source = yield* SourceStore.SourceStore
        for (const url of [
          repo.path,
          `${repo.path}/`,
          `file://${repo.path}`,
          `file://${encodeURI(repo.path)}`
        ]) {
          expect(source.checkGit(url, "main")).toBeUndefined()
          expect((yield* source.resolveGit(url, "main")).commitSha).toBe(repo.second)
        }
        const tree = yield* collect(source.context(gitVersion(`file://${repo.path}`, repo.first), ""))
        expect(extract(tree)).toEqual({ "a.txt": "one\n", "sub/s.txt": "sub one\n" })
        expect((yield* source.resolveGit(remote, "main")).commitSha).toBe(repo.second)
        expect(leftovers(directory)).toEqual([])
      }).pipe(Effect.provide(layer))
    })

    it.live("refuses paths outside it, however they are spelled, without looking at the disk", () => {
      const { layer } = store({ localRepositories: [repo.path] })
      return Effect.gen(function* () {
        const source = yield* SourceStore.SourceStore
        const expectedOrLocal = `${GitUrl.expected}, or a local repository in a directory this server allows`
        for (const url of [
          outside.path,
          "/etc",
          `${repo.path}/../${outside.path.split("/").at(-1)}`,
          `${repo.path}/./sub`,
          `${repo.path}//sub`,
          `${repo.path}-other`,
          `file://localhost${repo.path}`,
          `file://${repo.path}/%2e%2e/x`,
          `file://${repo.path}%00`,
          "repo",
          `ext::sh -c cat% ${repo.path}`
        ]) {
          expect(source.checkGit(url)).toEqual({ field: "url", issue: expectedOrLocal })
          expect((yield* Effect.flip(source.resolveGit(url, "main"))).reason).toBe("Refused")
        }
      }).pipe(Effect.provide(layer))
    })

    it.live("a store allowing another directory refuses this one", () =>
      Effect.gen(function* () {
        const source = yield* SourceStore.SourceStore
        expect((yield* Effect.flip(source.resolveGit(repo.path, "main"))).reason).toBe("Refused")
      }).pipe(Effect.provide(elsewhere.layer))
    )
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
        const fiber = yield* source.context(gitVersion(server.urlOf(big), head), "").pipe(
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
        const context = yield* collect(source.context(gitVersion(server.urlOf(big), head), ""))
        expect(list(context)).toContain("big.bin")
        expect(context.length).toBeGreaterThan(8 * 1024 * 1024)
      }).pipe(Effect.provide(layer))
    })
  })
})
