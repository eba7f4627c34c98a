/**
 * `npm run bench -- latency`: on an idle system, how long a queued build waits for an engine to claim
 * it. 1,000 builds created one at a time (the next once the last has finished), each measured from just
 * before `createBuild` to its claim time (`startedAt`); p50 and p99. On SQLite the engine runs in the
 * same process (the single-process deployment); on PostgreSQL in another process, so the wake-up is a
 * `NOTIFY` between processes. The engines poll every second besides: a p50 far below that is a
 * notification at work. Last line: `latency: sqlite_p50_ms=<n> sqlite_p99_ms=<n> postgres_p50_ms=<n> postgres_p99_ms=<n>`.
 */
import { fork } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeRuntime } from "@effect/platform-node"
import * as PgTesting from "@kiln/adapter-postgres/testing"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, Engine, SourceStore, Storage } from "@kiln/core"
import { DateTime, Effect, Layer, Stream } from "effect"
import { noopRunner, percentile, pgStorage, postgres, quiet, seedVersion } from "./pipeline.ts"

const count = Number(process.env.KILN_BENCH_BUILDS ?? 1000)
const warmup = 20

/** Creates builds one at a time, each after the last stopped; the wait of each from creation to claim. */
const measure = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  const version = yield* seedVersion
  const changes = yield* storage.changes
  const waits: Array<number> = []
  const stopped = (id: string) =>
    Stream.runHead(
      Stream.filter(
        changes,
        (change) => change._tag === "BuildChanged" && change.phase === "stopped" && change.buildId === id
      )
    )
  for (let i = 0; i < warmup + count; i++) {
    // The claim time is on the wall clock, in whole milliseconds (the process's on SQLite, the server's on
    // PostgreSQL: one machine, one clock); so is this. `performance.timeOrigin + now()` drifts from it.
    const before = Date.now()
    const build = yield* storage.createBuild(Access.all, {
      appVersionId: version.id,
      trigger: "manual",
      createdBy: "bench"
    })
    yield* stopped(build.id)
    const { startedAt } = yield* storage.getBuild(Access.all, build.id)
    if (i >= warmup) waits.push(DateTime.toEpochMillis(startedAt!) - before)
  }
  return waits.sort((a, b) => a - b)
}).pipe(Effect.scoped)

const report = (name: string, waits: ReadonlyArray<number>) => {
  const [p50, p99] = [percentile(waits, 50), percentile(waits, 99)]
  console.log(`latency ${name}: ${waits.length} builds, p50_ms=${p50.toFixed(1)} p99_ms=${p99.toFixed(1)}`)
  return { p50, p99 }
}

const scratch = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "kiln-bench-latency-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const sqlite = Effect.gen(function* () {
  const dir = yield* scratch
  return yield* measure.pipe(
    Effect.provide(
      Engine.layer({ concurrency: 10 }).pipe(
        Layer.provideMerge(
          Layer.mergeAll(
            SqliteStorage.layer({ filename: join(dir, "kiln.db") }),
            noopRunner,
            SourceStore.layer({ directory: join(dir, "sources") })
          )
        )
      )
    )
  )
}).pipe(Effect.scoped)

const postgresql = Effect.gen(function* () {
  const url = yield* postgres
  const dir = yield* scratch
  const schema = PgTesting.uniqueSchema("kiln_bench")
  return yield* Effect.gen(function* () {
    yield* Effect.acquireRelease(
      Effect.callback<ReturnType<typeof fork>>((resume) => {
        const child = fork(new URL("./engine-process.ts", import.meta.url), [
          url,
          schema,
          join(dir, "sources")
        ])
        child.once("message", () => resume(Effect.succeed(child)))
        child.once("exit", (code) => resume(Effect.die(`the engine process exited with ${code}`)))
      }),
      (child) => Effect.sync(() => child.kill())
    )
    return yield* measure
  }).pipe(Effect.provide(pgStorage(url, schema)))
}).pipe(Effect.scoped)

const bench = Effect.gen(function* () {
  console.log(`${count} builds one at a time on an idle system (after ${warmup} unmeasured)`)
  const lite = report("sqlite", yield* sqlite)
  const pg = report("postgres", yield* postgresql)
  console.log(
    `latency: sqlite_p50_ms=${lite.p50.toFixed(1)} sqlite_p99_ms=${lite.p99.toFixed(1)} ` +
      `postgres_p50_ms=${pg.p50.toFixed(1)} postgres_p99_ms=${pg.p99.toFixed(1)}`
  )
})

NodeRuntime.runMain(bench.pipe(Effect.provide(quiet)))
