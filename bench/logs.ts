/**
 * `npm run bench -- logs`: log throughput end to end. A runner emits 200,000 lines as fast as it can; the
 * engine numbers, batches and writes them to a SQLite file. Lines per second from the claim to the
 * build's final state (which is written only after the last batch), median of 3 runs. Last line:
 * `logs: lines_per_s=<n>`.
 */
import { mkdirSync, rmSync } from "node:fs"
import { performance } from "node:perf_hooks"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, App, Engine, Runner, SourceStore, Storage } from "@kiln/core"
import { Effect, Layer, Stream } from "effect"

const lines = Number(process.env.KILN_BENCH_LINES ?? 200_000)
const runs = 3
const directory = ".kiln/bench/logs"

/** A runner that only talks: one step, `lines` lines of typical length, then done. */
const chatty = Layer.succeed(Runner.Runner, {
  run: () =>
    Stream.concat(
      Stream.succeed<Runner.RunnerEvent>({ _tag: "StepStarted", index: 0, name: "build" }),
      Stream.concat(
        Stream.range(1, lines).pipe(
          Stream.map(
            (i): Runner.RunnerEvent => ({
              _tag: "Log",
              stream: "stdout",
              step: "build",
              text: `#${i} compiling src/module-${i % 997}.ts ... done in ${i % 89} ms`
            })
          )
        ),
        Stream.succeed<Runner.RunnerEvent>({
          _tag: "StepFinished",
          index: 0,
          name: "build",
          status: "succeeded",
          exitCode: 0
        })
      )
    ),
  ping: Effect.void,
  resources: Effect.succeed([]),
  sweep: () => Effect.succeed([])
})

const once = (run: number) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const workspace = yield* storage.createWorkspace({ name: "bench" })
    const app = yield* storage.createApp(Access.all, {
      workspaceId: workspace.id,
      handle: "chatty",
      name: "Chatty",
      kind: "app",
      build: { ...App.defaultBuildSettings, strategy: "commands", buildCommand: "talk" }
    })
    const version = yield* storage.createAppVersion(Access.all, {
      appId: app.id,
      source: { type: "git", url: "https://git.example.com/chatty.git", commitSha: "b".repeat(40) }
    })
    const build = yield* storage.createBuild(Access.all, {
      appVersionId: version.id,
      trigger: "manual",
      createdBy: null
    })
    let claimedAt = 0
    let done = yield* storage.getBuild(Access.all, build.id)
    while (done.phase !== "stopped") {
      if (claimedAt === 0 && done.phase !== "queued") claimedAt = performance.now()
      yield* Effect.sleep("2 millis")
      done = yield* storage.getBuild(Access.all, build.id)
    }
    const seconds = (performance.now() - claimedAt) / 1000
    const stored = yield* storage.readLogs(Access.all, build.id, lines, 10)
    if (done.status !== "completed" || stored.lastSeq < lines) {
      return yield* Effect.die(`run ${run}: ${done.status}, ${stored.lastSeq} lines stored`)
    }
    console.log(
      `logs[run ${run}]: ${stored.lastSeq.toLocaleString()} lines in ${seconds.toFixed(2)} s = ${Math.round(lines / seconds).toLocaleString()} lines/s`
    )
    return lines / seconds
  })

const bench = Effect.gen(function* () {
  const rates: Array<number> = []
  for (let run = 1; run <= runs; run++) {
    const file = `${directory}/run-${run}.db`
    rmSync(file, { force: true })
    const layer = Engine.layer({ concurrency: 1, pollIntervalMs: 5 }).pipe(
      Layer.provideMerge(
        Layer.mergeAll(
          SqliteStorage.layer({
            filename: file,
            logBudget: { headBytes: 64 * 1024 ** 2, tailBytes: 64 * 1024 ** 2 }
          }),
          chatty,
          SourceStore.layer({ directory: `${directory}/sources` })
        )
      )
    )
    rates.push(yield* once(run).pipe(Effect.provide(layer)))
  }
  const median = [...rates].sort((a, b) => a - b)[Math.floor(rates.length / 2)]!
  console.log(`logs: lines_per_s=${Math.round(median)}`)
})

mkdirSync(directory, { recursive: true })
await Effect.runPromise(bench)
