/**
 * `npm run bench -- events`: 10,000 builds (`KILN_BENCH_BUILDS`) through the engine with a no-op runner,
 * concurrency 10, sending up to 128 deliveries at once to one webhook endpoint that takes every event, on
 * SQLite and then on PostgreSQL (engine in this process). The receiver runs on a worker thread, as a real
 * one runs elsewhere, so that parsing its requests does not take the engine's core.
 *
 * Each storage runs twice, on a fresh store each time: a burst (builds created ten at a time, as fast as
 * they go) and a paced run (`KILN_BENCH_RATE` builds a second, 550 by default, about 2,200 events a
 * second). A burst queues thousands of builds at once, so its latency is mostly queueing behind them; the
 * paced run offers more events than the goal of 2,000 a second while staying under what the engine
 * takes, which is what latency means. The last line reports the paced runs (the worse storage's figures).
 *
 * Each event's latency runs from its timestamp — the change's time, taken in its write just before the
 * commit — to its arrival at the receiver; the rate is every event delivered over the time from the first
 * build's creation to the last arrival. `lost` counts feed events written after the endpoint was created
 * that the receiver never acknowledged; `duplicates`, arrivals beyond the first of an event. Last line:
 * `events: delivered_per_s=<n> p50_ms=<n> p99_ms=<n> lost=<n> duplicates=<n>`.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Worker } from "node:worker_threads"
import { NodeRuntime } from "@effect/platform-node"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, Engine, SourceStore, Storage, Webhook } from "@kiln/core"
import { Effect, Layer } from "effect"
import { noopRunner, percentile, pgStorage, postgres, quiet, seedVersions } from "./pipeline.ts"

const count = Number(process.env.KILN_BENCH_BUILDS ?? 10_000)
const rate = Number(process.env.KILN_BENCH_RATE ?? 550)
/** The builds are spread over this many apps: one app's builds are numbered in turn, so they queue up. */
const apps = 10

interface Figures {
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly lost: number
  readonly duplicates: number
}

/** The receiver on its own worker thread (`event-receiver.ts`), stopped with the scope. */
const receiver = Effect.acquireRelease(
  Effect.callback<{
    url: string
    /** How many builds' `build.finished` arrived: the last event of a build, delivered in order. */
    finished: () => number
    duplicates: () => number
    /** Each event's latency by id, once the run is over. */
    arrivals: Effect.Effect<Map<string, number>>
    worker: Worker
  }>((resume) => {
    const counts = new Int32Array(new SharedArrayBuffer(8))
    const worker = new Worker(new URL("./event-receiver.ts", import.meta.url), { workerData: counts.buffer })
    worker.once("error", (error) => resume(Effect.die(error)))
    worker.once("message", (port: number) =>
      resume(
        Effect.succeed({
          url: `http://127.0.0.1:${port}/`,
          finished: () => Atomics.load(counts, 0),
          duplicates: () => Atomics.load(counts, 1),
          arrivals: Effect.callback<Map<string, number>>((answer) => {
            worker.once("message", (entries: Array<[string, number]>) =>
              answer(Effect.succeed(new Map(entries)))
            )
            worker.postMessage("arrivals")
          }),
          worker
        })
      )
    )
  }),
  (r) => Effect.promise(() => r.worker.terminate())
)

/**
 * Creates `count` builds — `rate` a second, or as fast as ten at a time go when `rate` is undefined — and
 * measures their events' delivery.
 */
const measure = (rate: number | undefined) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const hooks = yield* receiver
    const versions = yield* seedVersions(apps)
    yield* storage.createWebhook(Access.all, {
      workspaceId: versions[0]!.workspaceId,
      url: hooks.url,
      types: [],
      enabled: true,
      secret: Webhook.generateSecret()
    })
    // Events written before the endpoint existed (the version's) are not its to receive.
    const before = yield* storage.readEvents(Access.all, { after: null, types: null, limit: 100 })
    const after = before.at(-1)?.cursor ?? null
    // Ten callers at a time, as many clients of a busy workspace would be: one caller's creations would
    // take turns, each a few round trips to PostgreSQL.
    const create = (from: number, to: number) =>
      Effect.forEach(
        Array.from({ length: to - from }, (_, n) => from + n),
        (n) =>
          storage.createBuild(Access.all, {
            appVersionId: versions[n % apps]!.id,
            trigger: "manual",
            createdBy: "bench"
          }),
        { concurrency: 10, discard: true }
      )
    const started = Date.now()
    if (rate === undefined) yield* create(0, count)
    else {
      // Each 10 ms tick creates the builds due by then, so a slow tick is made up by the next.
      for (let created = 0; created < count; ) {
        const due = Math.min(count, Math.floor(((Date.now() - started) / 1000) * rate) + 1)
        yield* create(created, due)
        created = due
        yield* Effect.sleep("10 millis")
      }
    }
    // Each build's events arrive in order, `build.finished` last: waiting on the receiver alone keeps the
    // wait from reading the feed while it is measured.
    while (hooks.finished() < count) yield* Effect.sleep("20 millis")
    const elapsed = (Date.now() - started) / 1000
    const all = yield* storage.readEvents(Access.all, { after, types: null, limit: 10 * count })
    const arrivals = yield* hooks.arrivals
    const latencies = [...arrivals.values()].sort((a, b) => a - b)
    return {
      perSecond: Math.round(all.length / elapsed),
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      lost: all.filter((event) => !arrivals.has(event.id)).length,
      duplicates: hooks.duplicates()
    } satisfies Figures
  }).pipe(Effect.scoped)

const engine = (storage: Layer.Layer<Storage.Storage, unknown>, dir: string) =>
  Engine.layer({ concurrency: 10, webhooks: { concurrency: 128 } }).pipe(
    Layer.provideMerge(
      Layer.mergeAll(storage, noopRunner, SourceStore.layer({ directory: join(dir, "sources") }))
    ),
    Layer.provide(Layer.succeed(Webhook.Addresses, { allowPrivate: true }))
  )

const scratch = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "kiln-bench-events-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const report = (name: string, f: Figures) => {
  console.log(
    `events ${name}: ${count} builds, delivered_per_s=${f.perSecond} p50_ms=${f.p50} p99_ms=${f.p99} lost=${f.lost} duplicates=${f.duplicates}`
  )
  return f
}

/** Both runs on one storage, each on a store of its own (`storage` makes one per name). */
const runs = (name: string, storage: (run: string) => Layer.Layer<Storage.Storage, unknown>, dir: string) =>
  Effect.gen(function* () {
    report(`${name} burst`, yield* measure(undefined).pipe(Effect.provide(engine(storage("burst"), dir))))
    return report(
      `${name} at ${rate} builds/s`,
      yield* measure(rate).pipe(Effect.provide(engine(storage("paced"), dir)))
    )
  })

const bench = Effect.gen(function* () {
  const dir = yield* scratch
  const lite = yield* runs("sqlite", (run) => SqliteStorage.layer({ filename: join(dir, `${run}.db`) }), dir)
  const url = yield* postgres
  const pg = yield* runs("postgres", () => pgStorage(url), dir)
  console.log(
    `events: delivered_per_s=${Math.min(lite.perSecond, pg.perSecond)} p50_ms=${Math.max(lite.p50, pg.p50)} ` +
      `p99_ms=${Math.max(lite.p99, pg.p99)} lost=${lite.lost + pg.lost} duplicates=${lite.duplicates + pg.duplicates}`
  )
}).pipe(Effect.scoped)

NodeRuntime.runMain(bench.pipe(Effect.provide(quiet)))
