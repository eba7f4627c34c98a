/**
 * Real parts for the SourceStore tests: temporary store directories, gzip tars made with the tar CLI
 * (or, for entries no tool would write, with Kiln's own tar writer), git repositories made with the git
 * CLI and served over HTTP by `GitServer`, and a look at the tars the store answers with the tar CLI.
 */
import { execFileSync } from "node:child_process"
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, relative } from "node:path"
import { gzipSync } from "node:zlib"
import { AppVersion, Id, SourceStore } from "@kiln/core"
import { GitServer } from "@kiln/core/testing"
import { DateTime, Effect, Stream } from "effect"
import { afterAll } from "vitest"
import { type EntryType, type Event, write } from "../src/internal/tar.ts"

const root = mkdtempSync(join(tmpdir(), "kiln-source-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

let made = 0
/** A new empty directory, removed after the file's tests. */
export const tempDir = (name = "dir"): string => {
  const path = join(root, `${name}-${++made}`)
  mkdirSync(path, { recursive: true })
  return path
}

export const run = (command: string, args: ReadonlyArray<string>, cwd?: string, input?: Uint8Array): Buffer =>
  execFileSync(command, args, {
    cwd,
    input,
    maxBuffer: 1024 ** 3,
    stdio: ["pipe", "pipe", "pipe"],
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "Ada Lovelace",
      GIT_AUTHOR_EMAIL: "ada@example.com",
      GIT_COMMITTER_NAME: "Ada Lovelace",
      GIT_COMMITTER_EMAIL: "ada@example.com"
    }
  })

/** A store on a fresh directory, and that directory. */
export const store = (options: Omit<SourceStore.SourceStoreOptions, "directory"> = {}) => {
  const directory = tempDir("store")
  return { directory, layer: SourceStore.layer({ directory, ...options }) }
}

/**
 * What the store left in its scratch directory and as partial archives (hidden files beside the stored
 * ones): nothing, once every operation has ended.
 */
export const leftovers = (directory: string): ReadonlyArray<string> => [
  ...readdirSync(join(directory, "tmp")),
  ...readdirSync(join(directory, "archives")).filter((name) => name.startsWith("."))
]

/**
 * Writes `files` under a new directory: path → content, or "-> target" for a symbolic link, or
 * "=> path" for a hard link to an earlier file.
 */
export const tree = (files: Record<string, string>): string => {
  const dir = tempDir("tree")
  for (const [path, content] of Object.entries(files)) {
    const file = join(dir, path)
    mkdirSync(dirname(file), { recursive: true })
    if (content.startsWith("-> ")) run("ln", ["-s", content.slice(3), file])
    else if (content.startsWith("=> ")) run("ln", [join(dir, content.slice(3)), file])
    else writeFileSync(file, content)
  }
  return dir
}

/** A `.tar.gz` of `files`, made by GNU tar, in name order (so the first of hard-linked names holds the data). */
export const tarGz = (files: Record<string, string>, format: "gnu" | "posix" = "gnu"): Uint8Array =>
  run("tar", [`--format=${format}`, "--sort=name", "-czf", "-", "-C", tree(files), "."])

/** An entry as no well-behaved tool would write it, for the refusals. */
export interface Crafted {
  readonly path: string
  readonly type?: EntryType
  readonly linkTarget?: string
  readonly content?: string
}

/** A `.tar.gz` of exactly these entries, written with Kiln's tar writer (which does not judge paths). */
export const craft = (entries: ReadonlyArray<Crafted>): Effect.Effect<Uint8Array> =>
  collectTar(
    entries.flatMap((entry): ReadonlyArray<Event> => {
      const data = Buffer.from(entry.content ?? "")
      const header = {
        path: entry.path,
        type: entry.type ?? "file",
        linkTarget: entry.linkTarget ?? "",
        size: data.length,
        mode: 0o644,
        mtime: 1_700_000_000
      }
      return [{ _tag: "Entry", header }, { _tag: "Data", bytes: data }, { _tag: "EntryEnd" }]
    })
  ).pipe(Effect.map((tar) => gzipSync(tar)))

/** The uncompressed tar of `events`, by Kiln's tar writer. */
export const collectTar = (events: ReadonlyArray<Event>): Effect.Effect<Buffer> =>
  Stream.runCollect(write(Stream.fromIterable(events))).pipe(Effect.map((chunks) => Buffer.concat(chunks)))

/** The bytes as a stream, in chunks of `chunkSize`. */
export const body = (bytes: Uint8Array, chunkSize = 64 * 1024): Stream.Stream<Uint8Array> =>
  Stream.fromIterable(
    Array.from({ length: Math.ceil(bytes.length / chunkSize) }, (_, i) =>
      bytes.subarray(i * chunkSize, (i + 1) * chunkSize)
    )
  )

/** What a tar holds, as the tar CLI extracts it: path → content, or "-> target" for a symbolic link. */
export const extract = (tar: Uint8Array): Record<string, string> => {
  const dir = tempDir("extract")
  run("tar", ["-xf", "-", "-C", dir], undefined, tar)
  const files: Record<string, string> = {}
  const walk = (relative: string) => {
    for (const entry of readdirSync(join(dir, relative), { withFileTypes: true })) {
      const path = relative === "" ? entry.name : `${relative}/${entry.name}`
      if (entry.isSymbolicLink()) files[path] = `-> ${readlinkSync(join(dir, path))}`
      else if (entry.isDirectory()) walk(path)
      else files[path] = readFileSync(join(dir, path), "utf8")
    }
  }
  walk("")
  return files
}

/** The entry names of a tar, as the tar CLI lists them, sorted. */
export const list = (tar: Uint8Array): ReadonlyArray<string> =>
  run("tar", ["--quoting-style=literal", "-tf", "-"], undefined, tar)
    .toString("utf8")
    .split("\n")
    .filter((line) => line !== "")
    .sort()

export const collect = (stream: Stream.Stream<Uint8Array, SourceStore.SourceError>) =>
  Stream.runCollect(stream).pipe(Effect.map((chunks) => Buffer.concat(chunks)))

const epoch = DateTime.makeUnsafe(1_700_000_000_000)
const id = <P extends Id.Prefix>(prefix: P) =>
  Id.fromUuid(prefix, `0190b3a0-0000-7000-8000-${String(++made).padStart(12, "0")}`)!

/** A ready git version of `url` at `commitSha`. */
export const gitVersion = (url: string, commitSha: string): AppVersion.AppVersion =>
  AppVersion.make(id("ver"), id("wsp"), { appId: id("app"), source: { type: "git", url, commitSha } }, epoch)

/** A ready archive version of a stored archive. */
export const archiveVersion = (stored: SourceStore.StoredArchive): AppVersion.AppVersion =>
  AppVersion.resolve(
    AppVersion.make(id("ver"), id("wsp"), { appId: id("app"), source: { type: "archive" } }, epoch),
    AppVersion.archiveStored(stored),
    epoch
  )

export interface Repository {
  readonly path: string
  /** `a.txt` "one", `sub/s.txt` "sub one"; branch `old` and annotated tag `v1` point here. */
  readonly first: string
  /** `a.txt` "two", `sub/s.txt` "sub two", `sub/deeper/d.txt`; the head of `main`. */
  readonly second: string
}

/** A git repository with two commits, a subdirectory, a branch and an annotated tag. */
export const repository = (): Repository => {
  const path = tempDir("repo")
  const git = (...args: ReadonlyArray<string>) => run("git", args, path).toString("utf8").trim()
  git("init", "--quiet", "--initial-branch=main")
  mkdirSync(join(path, "sub"))
  writeFileSync(join(path, "a.txt"), "one\n")
  writeFileSync(join(path, "sub", "s.txt"), "sub one\n")
  git("add", ".")
  git("commit", "--quiet", "-m", "first")
  const first = git("rev-parse", "HEAD")
  git("branch", "old")
  git("tag", "-a", "v1", "-m", "version one")
  writeFileSync(join(path, "a.txt"), "two\n")
  writeFileSync(join(path, "sub", "s.txt"), "sub two\n")
  mkdirSync(join(path, "sub", "deeper"))
  writeFileSync(join(path, "sub", "deeper", "d.txt"), "deep\n")
  git("add", ".")
  git("commit", "--quiet", "-m", "second", "-m", "with a body")
  return { path, first, second: git("rev-parse", "HEAD") }
}

/**
 * A git server on every repository this file makes, closed after its tests; `urlOf` is where it serves
 * one. `redirects` as `GitServer` takes them.
 */
export const gitServer = async (options: GitServer.Options = {}) => {
  const server = await GitServer.start(root, options)
  afterAll(server.close)
  return { url: server.url, urlOf: (repo: Repository) => `${server.url}/${relative(root, repo.path)}` }
}

/** Running git processes whose command line mentions `text`. */
export const gitProcesses = (text: string): ReadonlyArray<number> =>
  run("ps", ["-eo", "pid=,args="])
    .toString("utf8")
    .split("\n")
    .filter((line) => line.includes("git") && line.includes(text) && !line.includes("ps -eo"))
    .map((line) => Number.parseInt(line.trim(), 10))
