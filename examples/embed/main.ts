/**
 * Embedding Kiln: `@kiln/core` with the SQLite storage and the Docker runner, no server. It builds
 * `examples/hello-app` from this repository's current commit (or, with `--archive`, from an uploaded
 * archive of it), and prints the build's log live under a one-line progress display.
 *
 *   npm start                 # git source: this repository at HEAD
 *   npm start -- --archive    # archive source: a .tar.gz of examples/hello-app
 *
 * State lives in `.kiln/` (`KILN_DB` moves the database); `KILN_REGISTRY=127.0.0.1:5000` also pushes.
 */
import { spawn, spawnSync } from "node:child_process"
import { mkdirSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, App, type Build, Engine, Fields, Query, SourceStore, Storage } from "@kiln/core"
import { DockerRunner } from "@kiln/runner-docker"
import { DateTime, Effect, Fiber, Layer, References, Stream } from "effect"

const root = resolve(import.meta.dirname, "../..")
const filename = process.env.KILN_DB ?? resolve(root, ".kiln/kiln.db")
const useArchive = process.argv.includes("--archive")
const registry = process.env.KILN_REGISTRY
const tty = process.stdout.isTTY === true

const git = (...args: Array<string>) => spawnSync("git", args, { cwd: root, encoding: "utf8" })

/** The workspace and app this example builds, created on the first run and found after. */
const ensureApp = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  const query = yield* Query.fromParams(Fields.apps as Fields.Table<unknown>, Access.all, {
    filter: JSON.stringify({ handle: { eq: "hello-app" } })
  })
  const [existing] = (yield* storage.listApps(Access.all, query)).rows
  if (existing !== undefined) return existing
  const workspace = yield* storage.createWorkspace({ name: "Examples" })
  return yield* storage.createApp(Access.all, {
    workspaceId: workspace.id,
    handle: "hello-app",
    name: "Hello app",
    kind: "app",
    build: { ...App.defaultBuildSettings, rootDirectory: "examples/hello-app", timeoutMs: 10 * 60 * 1000 }
  })
})

/** This repository at HEAD, or a .tar.gz of the app's directory uploaded to the source store. */
const createVersion = (app: App.App) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const head = git("rev-parse", "HEAD")
    if (!useArchive && head.status === 0) {
      console.log(`source: git ${root} @ ${head.stdout.trim().slice(0, 12)}`)
      return yield* storage.createAppVersion(Access.all, {
        appId: app.id,
        source: { type: "git", url: root, commitSha: head.stdout.trim() }
      })
    }
    const sources = yield* SourceStore.SourceStore
    const tar = spawn("tar", ["-czf", "-", "-C", root, "examples/hello-app"])
    const stored = yield* sources.putArchive(
      Stream.fromAsyncIterable(tar.stdout as AsyncIterable<Uint8Array>, (cause) => new Error(String(cause)))
    )
    console.log(`source: archive ${stored.sha256.slice(0, 12)} (${stored.sizeBytes} bytes)`)
    const version = yield* storage.createAppVersion(Access.all, {
      appId: app.id,
      source: { type: "archive" }
    })
    return yield* storage.resolveAppVersion(Access.all, version.id, {
      status: "ready",
      commitSha: stored.sha256,
      sizeBytes: stored.sizeBytes
    })
  })

/** One line at the bottom of a terminal, rewritten as the build moves; log lines scroll above it. */
const progress = (() => {
  let status = ""
  const clear = () => (tty && status !== "" ? "\r\x1b[K" : "")
  return {
    print: (line: string) => process.stdout.write(`${clear()}${line}\n${tty ? status : ""}`),
    set: (line: string) => {
      if (!tty) return
      process.stdout.write(`${clear()}${line}`)
      status = line
    },
    done: () => process.stdout.write(clear())
  }
})()

/** Follows a build: prints every log line once, in order, until it stops and its log is read to the end. */
const follow = (build: Build.Build) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    // Subscribe first, then read: a change between the two cannot be missed.
    const changes = yield* storage.changes
    const wake = yield* Effect.forkChild(Stream.runDrain(changes))
    const started = Date.now()
    let seq = 0
    let current = yield* storage.getBuild(Access.all, build.id)
    while (true) {
      const page = yield* storage.readLogs(Access.all, build.id, seq, 1000)
      for (const line of page.lines) {
        progress.print(line.stream === "system" ? `\x1b[2m${line.text}\x1b[0m` : line.text)
        seq = line.seq
      }
      current = yield* storage.getBuild(Access.all, build.id)
      const step = current.steps.at(-1)?.name ?? "waiting for the engine"
      const elapsed = ((Date.now() - started) / 1000).toFixed(1)
      progress.set(`⏳ ${current.status} · ${step} · ${seq} lines · ${elapsed}s`)
      if (current.phase === "stopped" && page.lines.length === 0) break
      yield* Effect.sleep("100 millis")
    }
    yield* Fiber.interrupt(wake)
    progress.done()
    return current
  }).pipe(Effect.scoped)

const program = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  const app = yield* ensureApp
  const version = yield* createVersion(app)
  const build = yield* storage.createBuild(Access.all, {
    appVersionId: version.id,
    trigger: "manual",
    createdBy: "examples/embed"
  })
  console.log(`queued ${build.id} (#${build.sequenceNumber} of ${app.handle})\n`)
  const done = yield* follow(build)
  const seconds =
    done.completedAt !== null && done.startedAt !== null
      ? (DateTime.toEpochMillis(done.completedAt) - DateTime.toEpochMillis(done.startedAt)) / 1000
      : 0
  console.log(`\n${done.status === "completed" ? "✔" : "✘"} ${done.status} in ${seconds.toFixed(1)}s`)
  for (const step of done.steps) console.log(`  ${step.status.padEnd(9)} ${step.name}`)
  if (done.imageTag !== null) console.log(`image: ${done.imageTag}  (docker run --rm ${done.imageTag})`)
  if (done.error !== null) console.log(`error: ${done.error}`)
  if (done.status !== "completed") process.exitCode = 1
})

mkdirSync(dirname(filename), { recursive: true })
const layer = Engine.Engine.layer({ concurrency: 1 }).pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      SqliteStorage.layer({ filename }),
      SourceStore.SourceStore.layer({ directory: resolve(root, ".kiln/sources") }),
      DockerRunner.layer(registry === undefined ? {} : { registry: { host: registry } })
    )
  )
)
// The engine's own progress events are for operators; this example shows the build's log instead.
const quiet = Layer.succeed(References.MinimumLogLevel, "Warn")
Effect.runPromise(program.pipe(Effect.provide(layer), Effect.provide(quiet))).catch((error) => {
  progress.done()
  console.error(error)
  process.exitCode = 1
})
