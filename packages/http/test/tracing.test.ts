/**
 * Traces on the real server, exported over OTLP/HTTP to a collector that is a plain HTTP server here: an
 * API request's server span with the storage calls under it, and a build's claim, run and steps. Without
 * a tracer, storage is not wrapped at all: tracing off costs nothing.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:http"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { Access, Query, Runner, Storage, Tracing } from "@kiln/core"
import { Context, Effect, Layer, Tracer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startServer, type TestServer, workspaceWithApp } from "./fixtures/server.ts"

interface Span {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }>
}

const spans: Array<Span> = []
let collector: Server
let server: TestServer
beforeAll(async () => {
  collector = createServer((request, response) => {
    let body = ""
    request.on("data", (chunk) => (body += chunk))
    request.on("end", () => {
      const sent = JSON.parse(body) as {
        resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<Span> }> }>
      }
      for (const resource of sent.resourceSpans)
        for (const scope of resource.scopeSpans) spans.push(...scope.spans)
      response.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((done) => collector.listen(0, "127.0.0.1", done))
  const { port } = collector.address() as { port: number }
  server = await startServer({
    engine: { runner: Runner.layerTest, options: { pollIntervalMs: 50 } },
    tracing: { url: `http://127.0.0.1:${port}/v1/traces`, exportInterval: "100 millis" }
  })
})
afterAll(async () => {
  await server?.close()
  collector?.close()
})

const attribute = (span: Span, key: string) => span.attributes.find((a) => a.key === key)?.value

/** Waits for a span that `match` accepts, up to 10 s. */
const exported = async (match: (span: Span) => boolean) => {
  for (let waited = 0; waited < 10_000; waited += 50) {
    const found = spans.find(match)
    if (found !== undefined) return found
    await new Promise((done) => setTimeout(done, 50))
  }
  throw new Error(`no such span among: ${[...new Set(spans.map((s) => s.name))].join(", ")}`)
}

describe("traces", () => {
  it("exports a request's server span with its storage calls under it", async () => {
    const { workspace } = await workspaceWithApp(server)
    const reply = await call(server, "GET", `/api/workspaces/${workspace.id}`)
    expect(reply.status).toBe(200)
    const read = await exported((span) => span.name === "kiln.storage.getWorkspace")
    const request = await exported((span) => span.spanId === read.parentSpanId)
    expect(request.traceId).toBe(read.traceId)
    expect(request.name).toMatch(/GET/)
  })

  it("exports a build's claim, its run and its steps, the steps under the run", async () => {
    const { app } = await workspaceWithApp(server, { strategy: "commands", buildCommand: "echo built" })
    const dir = join(server.dir, app.id)
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, "README"), "traced\n")
    const version = await call(server, "POST", "/api/app-versions", {
      body: { appId: app.id, source: { type: "archive" } }
    })
    await call(server, "POST", `/api/app-versions/${version.body.id}/archive`, {
      body: new Uint8Array(gzipSync(execFileSync("tar", ["-c", "-C", dir, "."]))),
      headers: { "content-type": "application/gzip" }
    })
    const build = (await call(server, "POST", "/api/builds", { body: { appVersionId: version.body.id } }))
      .body.id
    const run = await exported(
      (span) => span.name === "kiln.build.run" && attribute(span, "kiln.build_id")?.stringValue === build
    )
    const step = await exported((span) => span.name === "kiln.build.step" && span.parentSpanId === run.spanId)
    expect(attribute(step, "kiln.step.status")?.stringValue).toBe("succeeded")
    await exported((span) => span.name === "kiln.engine.claim")
    // The run's storage writes are under it too.
    await exported((span) => span.name.startsWith("kiln.storage.") && span.traceId === run.traceId)
  })

  it("wraps storage only where a tracer exports: built without one, it opens no span", async () => {
    const names: Array<string> = []
    const recording = Tracer.make({
      span: (options) => {
        names.push(options.name)
        return Tracer.nativeTracer.span(options)
      }
    })
    const withTracer = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.provideService(effect, Tracer.Tracer, recording)
    const read = Storage.Storage.use((storage) =>
      Effect.asVoid(storage.listWorkspaces(Access.all, Query.first(1)))
    )
    await Effect.runPromise(
      Effect.gen(function* () {
        expect(yield* Tracing.active).toBe(false)
        expect(yield* withTracer(Tracing.active)).toBe(true)
        // Built without a tracer: a call made later under one still opens no span of Kiln's.
        const plain = yield* Layer.build(Storage.layerMemory()).pipe(Effect.map(Context.get(Storage.Storage)))
        yield* withTracer(Effect.provideService(read, Storage.Storage, plain))
        expect(names).toEqual([])
        const traced = yield* withTracer(
          Layer.build(Storage.layerMemory()).pipe(Effect.map(Context.get(Storage.Storage)))
        )
        yield* withTracer(Effect.provideService(read, Storage.Storage, traced))
        expect(names).toEqual(["kiln.storage.listWorkspaces"])
      }).pipe(Effect.scoped)
    )
  })
})
