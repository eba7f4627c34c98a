/**
 * `npm run bench -- tracing`: what Kiln's spans cost. The same request — `GET /api/workspaces/{id}`, an
 * authenticated read of SQLite through `KilnHttp.toWebHandler`, in process, so the network does not hide
 * the difference — is made `KILN_BENCH_REQUESTS` times (5,000 by default) one after another, with tracing
 * off (no tracer: storage unwrapped, no span) and on (spans exported over OTLP/HTTP to a local collector that
 * discards them). Last line: `tracing: off_us=<n> on_us=<n> overhead_us=<n>` per request (the median of
 * three rounds each).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Authenticator, SourceStore, Storage, Tracing } from "@kiln/core"
import { KilnHttp } from "@kiln/http"
import { Effect, Layer, ManagedRuntime } from "effect"

const requests = Number(process.env.KILN_BENCH_REQUESTS ?? 5000)
const dir = mkdtempSync(join(tmpdir(), "kiln-bench-tracing-"))
const collector = createServer((request, response) => {
  request.resume()
  request.on("end", () => response.writeHead(200, { "content-type": "application/json" }).end("{}"))
})
await new Promise<void>((done) => collector.listen(0, "127.0.0.1", done))
const { port } = collector.address() as { port: number }

/** A handler over a fresh SQLite file with `tracing` beneath it, and one request's round of `requests`. */
const setUp = async <ROut>(name: string, tracing: Layer.Layer<ROut>) => {
  const services = Authenticator.layer.pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        SqliteStorage.layer({ filename: join(dir, `${name}.db`) }),
        SourceStore.layer({ directory: join(dir, `${name}-sources`) })
      )
    ),
    Layer.provide(tracing)
  )
  const runtime = ManagedRuntime.make(services)
  const { workspace, secret } = await runtime.runPromise(
    Effect.gen(function* () {
      const storage = yield* Storage.Storage
      const workspace = yield* storage.createWorkspace({ name: "bench" })
      const { secret } = yield* Authenticator.issueToken({
        name: "bench",
        role: "read",
        workspaceIds: "*",
        expiresAt: null
      })
      return { workspace, secret }
    })
  )
  const { handler, dispose } = KilnHttp.toWebHandler(Layer.succeedContext(await runtime.context()), {
    rateLimit: false
  })
  const url = `http://kiln.bench/api/workspaces/${workspace.id}`
  const headers = { authorization: `Bearer ${secret}` }
  const round = async () => {
    const started = performance.now()
    for (let n = 0; n < requests; n++) {
      const response = await handler(new Request(url, { headers }))
      if (response.status !== 200) throw new Error(`answered ${response.status}`)
      await response.arrayBuffer()
    }
    return ((performance.now() - started) * 1000) / requests
  }
  const close = async () => {
    await dispose()
    await runtime.dispose()
  }
  return { round, close }
}

const median = (values: ReadonlyArray<number>) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

try {
  const off = await setUp("off", Layer.empty)
  const on = await setUp(
    "on",
    Tracing.layerOtlp({ url: `http://127.0.0.1:${port}/v1/traces`, exportInterval: "1 second" })
  )
  // Rounds taken in turn, after a warm-up of each, so that a slower moment of the machine hits both.
  await off.round()
  await on.round()
  const rounds = { off: [] as Array<number>, on: [] as Array<number> }
  for (let n = 0; n < 5; n++) {
    rounds.off.push(await off.round())
    rounds.on.push(await on.round())
  }
  await Promise.all([off.close(), on.close()])
  for (const [name, figures] of Object.entries(rounds)) {
    console.log(`tracing ${name}: ${figures.map((us) => us.toFixed(1)).join(" ")} µs per request`)
  }
  const [offUs, onUs] = [median(rounds.off), median(rounds.on)]
  console.log(
    `tracing: off_us=${offUs.toFixed(1)} on_us=${onUs.toFixed(1)} overhead_us=${(onUs - offUs).toFixed(1)}`
  )
} finally {
  collector.close()
  rmSync(dir, { recursive: true, force: true })
}
