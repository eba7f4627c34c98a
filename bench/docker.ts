/**
 * `npm run bench -- docker`: the same hello-app build through Kiln (engine + SQLite + source store +
 * Docker runner, from an uploaded archive) and through `docker build` on the CLI, alternating, 5 runs
 * each, without the layer cache so both do the work. Kiln's time runs from `createBuild` to the stored
 * final state; the CLI's is the command's wall time. Last line: `docker: kiln/cli=<ratio of medians>`.
 */
import { execFileSync, spawn } from "node:child_process"
import { mkdirSync, rmSync } from "node:fs"
import { resolve } from "node:path"
import { performance } from "node:perf_hooks"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, App, AppVersion, Engine, SourceStore, Storage } from "@kiln/core"
import { DockerRunner } from "@kiln/runner-docker"
import { Effect, Layer, Stream } from "effect"

const runs = 5
const app = resolve(import.meta.dirname, "../examples/hello-app")
const directory = resolve(import.meta.dirname, "../.kiln/bench/docker")
const namespace = "kiln-bench-docker"

const median = (values: ReadonlyArray<number>) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const docker = (...args: Array<string>) =>
  execFileSync("docker", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })

const bench = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  const sources = yield* SourceStore.SourceStore
  const workspace = yield* storage.createWorkspace({ name: "bench" })
  const kilnApp = yield* storage.createApp(Access.all, {
    workspaceId: workspace.id,
    handle: "bench-hello",
    name: "Bench hello",
    kind: "app",
    build: { ...App.defaultBuildSettings, caching: false }
  })
  const tar = spawn("tar", ["-czf", "-", "-C", app, "."])
  const stored = yield* sources.putArchive(
    Stream.fromAsyncIterable(tar.stdout as AsyncIterable<Uint8Array>, (cause) => new Error(String(cause)))
  )
  const pending = yield* storage.createAppVersion(Access.all, {
    appId: kilnApp.id,
    source: { type: "archive" }
  })
  const version = yield* storage.resolveAppVersion(Access.all, pending.id, AppVersion.archiveStored(stored))

  const kiln = Effect.gen(function* () {
    const started = performance.now()
    const build = yield* storage.createBuild(Access.all, {
      appVersionId: version.id,
      trigger: "manual",
      createdBy: null
    })
    let done = yield* storage.getBuild(Access.all, build.id)
    while (done.phase !== "stopped") {
      yield* Effect.sleep("5 millis")
      done = yield* storage.getBuild(Access.all, build.id)
    }
    if (done.status !== "completed") return yield* Effect.die(`kiln build ${done.status}: ${done.error}`)
    return performance.now() - started
  })
  const cli = Effect.sync(() => {
    const started = performance.now()
    docker("build", "--no-cache", "-q", "-t", "bench-hello-cli:latest", app)
    return performance.now() - started
  })

  // One of each first, unmeasured: the engine and the daemon warm up.
  yield* kiln
  yield* cli
  const times = { kiln: [] as Array<number>, cli: [] as Array<number> }
  for (let run = 1; run <= runs; run++) {
    times.kiln.push(yield* kiln)
    times.cli.push(yield* cli)
    console.log(
      `docker[run ${run}]: kiln=${times.kiln.at(-1)!.toFixed(0)}ms cli=${times.cli.at(-1)!.toFixed(0)}ms`
    )
  }
  const [k, c] = [median(times.kiln), median(times.cli)]
  console.log(`docker: median kiln=${k.toFixed(0)}ms cli=${c.toFixed(0)}ms`)
  console.log(`docker: kiln/cli=${(k / c).toFixed(2)}`)
})

rmSync(directory, { recursive: true, force: true })
mkdirSync(directory, { recursive: true })
const layer = Engine.layer({ concurrency: 1, pollIntervalMs: 50 }).pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      SqliteStorage.layer({ filename: `${directory}/kiln.db` }),
      SourceStore.layer({ directory: `${directory}/sources` }),
      DockerRunner.layer({ namespace })
    )
  )
)
try {
  await Effect.runPromise(bench.pipe(Effect.provide(layer)))
} finally {
  // Both sides' images, so repeated runs do not fill the disk.
  for (const image of ["bench-hello-cli:latest", ...docker("images", "-q", "bench-hello").split("\n")]) {
    if (image.trim() !== "") execFileSync("docker", ["rmi", "-f", image.trim()], { stdio: "ignore" })
  }
}
