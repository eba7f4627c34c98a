/**
 * Embedding Kiln: `@kiln/core` with the SQLite storage and the Docker runner, no server. It builds
 * `examples/hello-app` from this repository's current commit (or, with `--archive`, from an uploaded
 * archive of it), and prints the build's log live under a one-line progress display.
 *
 *   npm run embed                 # git source: this repository at HEAD
 *   npm run embed -- --archive    # archive source: a .tar.gz of examples/hello-app
 *
 * State lives in `.kiln/` (`KILN_DATA_DIR`, `KILN_DB` move it); `KILN_REGISTRY=127.0.0.1:5000` also pushes.
 */
import { spawnSync } from "node:child_process"
import { Access, App, AppVersion, type Build, Fields, Query, SourceStore, Storage } from "@kiln/core"
import { Effect, Fiber, Layer, References, Stream } from "effect"
import * as BuildProgress from "../shared/BuildProgress.ts"
import * as DataDir from "../shared/DataDir.ts"
import * as HelloApp from "../shared/HelloApp.ts"
import * as LocalStack from "../shared/LocalStack.ts"

const useArchive = process.argv.includes("--archive")

const git = (...args: Array<string>) => spawnSync("git", args, { cwd: DataDir.root, encoding: "utf8" })

/** The workspace and app this example builds, created on the first run and found after. */
const ensureApp = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  const query = yield* Query.fromParams(Fields.apps, Access.all, {
    filter: JSON.stringify({ handle: { eq: HelloApp.handle } })
  })
  const [existing] = (yield* storage.listApps(Access.all, query)).rows
  if (existing !== undefined) return existing
  const workspace = yield* storage.createWorkspace({ name: "Examples" })
  return yield* storage.createApp(Access.all, {
    workspaceId: workspace.id,
    handle: HelloApp.handle,
    name: HelloApp.name,
    kind: "app",
    build: { ...App.defaultBuildSettings, ...HelloApp.build }
  })
})

/** This repository at HEAD, or a .tar.gz of the app's directory uploaded to the source store. */
const createVersion = (app: App.App) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const head = git("rev-parse", "HEAD")
    if (!useArchive && head.status === 0) {
      console.log(`source: git ${DataDir.root} @ ${head.stdout.trim().slice(0, 12)}`)
      return yield* storage.createAppVersion(Access.all, {
        appId: app.id,
        source: { type: "git", url: DataDir.root, commitSha: head.stdout.trim() }
      })
    }
    const sources = yield* SourceStore.SourceStore
    const stored = yield* sources.putArchive(HelloApp.archive())
    console.log(`source: archive ${stored.sha256.slice(0, 12)} (${stored.sizeBytes} bytes)`)
    const version = yield* storage.createAppVersion(Access.all, {
      appId: app.id,
      source: { type: "archive" }
    })
    return yield* storage.resolveAppVersion(Access.all, version.id, AppVersion.archiveStored(stored))
  })

/** Follows a build: prints every log line once, in order, until it stops and its log is read to the end. */
const follow = (build: Build.Build) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const progress = BuildProgress.make()
    yield* Effect.addFinalizer(() => Effect.sync(progress.done))
    // Subscribe first, then read: a change between the two cannot be missed.
    const changes = yield* storage.changes
    const wake = yield* Effect.forkChild(Stream.runDrain(changes))
    let seq = 0
    let current = yield* storage.getBuild(Access.all, build.id)
    while (true) {
      const page = yield* storage.readLogs(Access.all, build.id, seq, 1000)
      for (const line of page.lines) {
        progress.line(line)
        seq = line.seq
      }
      current = yield* storage.getBuild(Access.all, build.id)
      progress.status(current.status)
      if (current.phase === "stopped" && page.lines.length === 0) break
      yield* Effect.sleep("100 millis")
    }
    yield* Fiber.interrupt(wake)
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
  console.log(`\n${BuildProgress.summary(done)}`)
  if (done.status !== "completed") process.exitCode = 1
})

const layer = LocalStack.layer(DataDir.fromEnv(), {
  ...LocalStack.optionsFromEnv(),
  // This process is the only client: it may read its own checkout, which no server allows by default.
  gitLocalDirectories: [DataDir.root],
  engine: { concurrency: 1 }
})
// The engine's own progress events are for operators; this example shows the build's log instead.
const quiet = Layer.succeed(References.MinimumLogLevel, "Warn")
Effect.runPromise(program.pipe(Effect.provide(layer), Effect.provide(quiet))).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
