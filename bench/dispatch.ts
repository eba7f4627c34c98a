/**
 * `npm run bench -- dispatch`: how fast one Kiln process works through a queue on PostgreSQL, against
 * graphile-worker on the same server. Kiln: `KILN_BENCH_BUILDS` (default 20,000) queued builds, one
 * engine at concurrency 10 with its defaults, a runner with nothing to do — each build still goes claim →
 * running → one log line → completed, with its events. graphile-worker: as many no-op jobs, concurrency
 * 10, once with its defaults and once batched (a local queue of 500 jobs fetched at once, completions
 * batched with `completeJobBatchDelay: 0`, as its performance guide suggests). Queueing is not timed; the
 * clock runs from the worker's start to the last completion. Three runs each, alternating; medians. Last
 * line: `dispatch: kiln_per_s=<n> graphile_per_s=<n> ratio=<n> graphile_batched_per_s=<n>
 * batched_ratio=<n>`.
 */
import { performance } from "node:perf_hooks"
import { NodeRuntime } from "@effect/platform-node"
import { Access, Engine, SourceStore, Storage } from "@kiln/core"
import { Effect, Fiber, Layer, Stream } from "effect"
import { Logger, makeWorkerUtils, run as runGraphile } from "graphile-worker"
import pg from "pg"
import { median, noopRunner, pgStorage, postgres, quiet, seedVersion } from "./pipeline.ts"

const count = Number(process.env.KILN_BENCH_BUILDS ?? 20_000)
const concurrency = 10
const runs = 3

const kiln = (url: string, directory: string) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const version = yield* seedVersion
    yield* Effect.forEach(
      Array.from({ length: count }),
      () =>
        storage.createBuild(Access.all, { appVersionId: version.id, trigger: "manual", createdBy: "bench" }),
      { concurrency: 16, discard: true }
    )
    // Completions are counted as this process's storage announces them, as graphile-worker's are from its
    // events: watching costs the database nothing.
    const changes = yield* storage.changes
    const finished = yield* Effect.forkScoped(
      Stream.runDrain(
        Stream.takeUntil(
          Stream.scan(
            changes,
            () => 0,
            (done: number, change) =>
              change._tag === "BuildChanged" && change.phase === "stopped" ? done + 1 : done
          ),
          (done) => done === count
        )
      )
    )
    const started = performance.now()
    yield* Effect.scoped(Effect.andThen(Layer.build(Engine.layer({ concurrency })), Fiber.join(finished)))
    return count / ((performance.now() - started) / 1000)
  }).pipe(
    Effect.scoped,
    Effect.provide(
      Layer.mergeAll(noopRunner, SourceStore.layer({ directory })).pipe(Layer.provideMerge(pgStorage(url)))
    ),
    Effect.provide(quiet)
  )

/** graphile-worker's batching: jobs fetched (and locked) 500 at a time, completions written together. */
const batched = { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } }

const graphile = (url: string, database: string, preset?: typeof batched) =>
  Effect.promise(async () => {
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    await admin.query(`CREATE DATABASE "${database}"`)
    const connectionString = Object.assign(new URL(url), { pathname: `/${database}` }).toString()
    // A pool of ours, the size graphile-worker would choose, so that dropping the database afterwards
    // cannot crash the process through an idle connection of graphile-worker's.
    const pgPool = new pg.Pool({ connectionString, max: 10 })
    pgPool.on("error", () => {})
    pgPool.on("connect", (client) => client.on("error", () => {}))
    try {
      const utils = await makeWorkerUtils({ pgPool, logger: new Logger(() => () => {}) })
      await utils.migrate()
      for (let from = 0; from < count; from += 1000) {
        await utils.addJobs(
          Array.from({ length: Math.min(1000, count - from) }, (_, i) => ({
            identifier: "noop",
            payload: { n: from + i }
          }))
        )
      }
      await utils.release()
      let done = 0
      const finished = Promise.withResolvers<void>()
      const started = performance.now()
      const runner = await runGraphile({
        pgPool,
        concurrency,
        noHandleSignals: true,
        logger: new Logger(() => () => {}),
        taskList: { noop: async () => {} },
        ...(preset === undefined ? {} : { preset })
      })
      runner.events.on("job:success", () => {
        if (++done === count) finished.resolve()
      })
      await finished.promise
      const perSecond = count / ((performance.now() - started) / 1000)
      await runner.stop()
      return perSecond
    } finally {
      await pgPool.end()
      await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`)
      await admin.end()
    }
  })

const bench = Effect.gen(function* () {
  const url = yield* postgres
  console.log(
    `${count.toLocaleString()} no-op builds and jobs, concurrency ${concurrency}, ${runs} runs each, alternating`
  )
  const results = { kiln: [] as Array<number>, graphile: [] as Array<number>, batched: [] as Array<number> }
  for (let n = 1; n <= runs; n++) {
    const kilnPerSecond = yield* kiln(url, `.kiln/bench/dispatch-${process.pid}-${n}`)
    results.kiln.push(kilnPerSecond)
    console.log(`dispatch run ${n} kiln: per_s=${Math.round(kilnPerSecond)}`)
    const graphilePerSecond = yield* graphile(url, `graphile_bench_${process.pid}_${n}`)
    results.graphile.push(graphilePerSecond)
    console.log(`dispatch run ${n} graphile: per_s=${Math.round(graphilePerSecond)}`)
    const batchedPerSecond = yield* graphile(url, `graphile_bench_${process.pid}_${n}_batched`, batched)
    results.batched.push(batchedPerSecond)
    console.log(`dispatch run ${n} graphile batched: per_s=${Math.round(batchedPerSecond)}`)
  }
  const k = median(results.kiln)
  const g = median(results.graphile)
  const b = median(results.batched)
  console.log(
    `dispatch: kiln_per_s=${Math.round(k)} graphile_per_s=${Math.round(g)} ratio=${(k / g).toFixed(2)} ` +
      `graphile_batched_per_s=${Math.round(b)} batched_ratio=${(k / b).toFixed(2)}`
  )
})

NodeRuntime.runMain(Effect.scoped(bench))
