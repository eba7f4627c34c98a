/**
 * `npm run bench -- events`: 10,000 builds (`KILN_BENCH_BUILDS`) through the engine with a no-op runner,
 * concurrency 10, sending up to 128 deliveries at once to one webhook endpoint that takes every event on a
 * local receiver, on SQLite and then on
 * PostgreSQL (engine in this process). Each event's latency runs from its timestamp — the change's time,
 * taken in its write just before the commit — to its arrival at the receiver; the rate is every event
 * delivered over the time from the first build's creation to the last arrival. `lost` counts feed events
 * the receiver never acknowledged; `duplicates`, arrivals beyond the first of an event. Last line:
 * `events: delivered_per_s=<n> p50_ms=<n> p99_ms=<n> lost=<n> duplicates=<n>` (the worse storage's
 * figures), after a line per storage.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeRuntime } from "@effect/platform-node"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, Engine, SourceStore, Storage, Webhook } from "@kiln/core"
import { Effect, Layer } from "effect"
import { noopRunner, percentile, pgStorage, postgres, quiet, seedVersion } from "./pipeline.ts"

const count = Number(process.env.KILN_BENCH_BUILDS ?? 10_000)

interface Figures {
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly lost: number
  readonly duplicates: number
}

/** A receiver that acknowledges at once and notes when each event arrived. */
const receiver = Effect.acquireRelease(
  Effect.callback<{
    url: string
    arrivals: Map<string, number>
    /** How many builds' `build.finished` arrived: the last event of a build, delivered in order. */
    finished: () => number
    duplicates: () => number
    close: () => void
  }>((resume) => {
    const arrivals = new Map<string, number>()
    let duplicates = 0
    let finished = 0
    const server = createServer({ keepAlive: true }, (request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        const id = String(request.headers["webhook-id"])
        if (arrivals.has(id)) duplicates += 1
        else {
          const { type, timestamp } = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
            type: string
            timestamp: string
          }
          arrivals.set(id, Date.now() - Date.parse(timestamp))
          if (type === "build.finished") finished += 1
        }
        response.writeHead(204).end()
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resume(
        Effect.succeed({
          url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
          arrivals,
          finished: () => finished,
          duplicates: () => duplicates,
          close: () => server.close()
        })
      )
    )
  }),
  (r) => Effect.sync(r.close)
)

const measure = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  const hooks = yield* receiver
  const version = yield* seedVersion
  yield* storage.createWebhook(Access.all, {
    workspaceId: version.workspaceId,
    url: hooks.url,
    types: [],
    enabled: true,
    secret: Webhook.generateSecret()
  })
  const started = Date.now()
  yield* Effect.forEach(
    Array.from({ length: count }),
    () =>
      storage.createBuild(Access.all, { appVersionId: version.id, trigger: "manual", createdBy: "bench" }),
    { concurrency: 10, discard: true }
  )
  // Each build's events arrive in order, \`build.finished\` last: waiting on the receiver alone keeps the
  // wait from reading the feed while it is measured.
  while (hooks.finished() < count) yield* Effect.sleep("20 millis")
  const all = yield* storage.readEvents(Access.all, { after: null, types: null, limit: 10 * count })
  const elapsed = (Date.now() - started) / 1000
  const latencies = [...hooks.arrivals.values()].sort((a, b) => a - b)
  return {
    perSecond: Math.round(all.length / elapsed),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    lost: all.filter((event) => !hooks.arrivals.has(event.id)).length,
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

const bench = Effect.gen(function* () {
  const dir = yield* scratch
  const lite = report(
    "sqlite",
    yield* measure.pipe(Effect.provide(engine(SqliteStorage.layer({ filename: join(dir, "kiln.db") }), dir)))
  )
  const url = yield* postgres
  const pg = report("postgres", yield* measure.pipe(Effect.provide(engine(pgStorage(url), dir))))
  console.log(
    `events: delivered_per_s=${Math.min(lite.perSecond, pg.perSecond)} p50_ms=${Math.max(lite.p50, pg.p50)} ` +
      `p99_ms=${Math.max(lite.p99, pg.p99)} lost=${lite.lost + pg.lost} duplicates=${lite.duplicates + pg.duplicates}`
  )
}).pipe(Effect.scoped)

NodeRuntime.runMain(bench.pipe(Effect.provide(quiet)))
