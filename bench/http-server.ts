/**
 * One server for a benchmark, in a process of its own so that the load generator does not share its
 * event loop: `kiln <file> <directory>` is Kiln's own server on the SQLite file, `raw <file> <token>` a
 * bare `node:http` server that answers the same build from the same file, `effect <file> <token>` the same
 * answers from Effect's HTTP server and router, and `sources <file | postgres
 * URL> <directory> [schema]` Kiln's server on SQLite with its archives in the directory, or on PostgreSQL with its
 * archives there too, plus a second port where `GET /context/<version id>` reads that version's whole build
 * context in the server and answers `{"bytes":…,"ms":…}`. `fanout-kiln <file> <directory> <build id>` is
 * Kiln's server on the SQLite file, which writes the build's log through storage when the parent asks
 * (`{"write": <lines>}`), and `fanout-raw <lines>` a bare `ws` server that sends every client the same
 * frames when asked. Each listens on ephemeral ports of 127.0.0.1, sends them to the parent, and exits when the parent
 * goes.
 */
import { createServer } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { NodeHttpServer } from "@effect/platform-node"
import { PgArchiveStore, PgStorage } from "@kiln/adapter-postgres"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, Authenticator, type Id, SourceStore, Storage } from "@kiln/core"
import { KilnHttp } from "@kiln/http"
import Database from "better-sqlite3"
import { Effect, Layer, ManagedRuntime, References, Stream } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { WebSocketServer } from "ws"
import { at, batchLines, endFrame, lineFrame, lineText, statusFrame } from "./fanout-log.ts"
import type { Ready } from "./server-process.ts"

// Also when the parent dies without killing us: the IPC channel closes with it.
process.on("disconnect", () => process.exit())
// The parent's kill ends us through `exit`, so a server run with `--cpu-prof` writes its profile.
process.on("SIGTERM", () => process.exit())

const [kind, file, extra, schema] = process.argv.slice(2) as [string, string, string, string | undefined]

const portOf = async (runtime: ManagedRuntime.ManagedRuntime<HttpServer.HttpServer, unknown>) => {
  const address = await runtime.runPromise(
    HttpServer.HttpServer.use((server) => Effect.succeed(server.address))
  )
  if (address._tag === "UnixPathAddress") throw new Error("expected a TCP address")
  return address.port
}

const serve = async (services: Layer.Layer<Storage.Storage | SourceStore.SourceStore, unknown>) => {
  const runtime = ManagedRuntime.make(
    // No rate limit: the bench measures a request's cost, thousands a second from one token.
    KilnHttp.layerServer({ port: 0, host: "127.0.0.1", rateLimit: false }).pipe(
      Layer.provideMerge(Authenticator.layer.pipe(Layer.provideMerge(services))),
      // Errors still reach stderr; "Listening on …" would only interleave with the bench's lines.
      Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn"))
    )
  )
  return { port: await portOf(runtime), runtime }
}

const kiln = async (directory: string) =>
  (await serve(Layer.mergeAll(SqliteStorage.layer({ filename: file }), SourceStore.layer({ directory }))))
    .port

/** Reads a version's whole build context in this process: how fast a build would get it. */
const readContext = (id: string) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const sources = yield* SourceStore.SourceStore
    const version = yield* storage.getAppVersion(Access.all, id as Id.AppVersionId)
    const started = performance.now()
    const bytes = yield* Stream.runFold(
      sources.context(version, ""),
      () => 0,
      (total, chunk) => total + chunk.length
    )
    return { bytes, ms: performance.now() - started }
  })

const sources = async (target: string, directory: string) => {
  const services = target.startsWith("postgres")
    ? Layer.mergeAll(
        PgStorage.layer({ connectionString: target, schema }),
        SourceStore.layerWithArchiveStore({ directory }).pipe(
          Layer.provide(PgArchiveStore.layer({ connectionString: target, schema }))
        )
      )
    : Layer.mergeAll(SqliteStorage.layer({ filename: target }), SourceStore.layer({ directory }))
  const { port, runtime } = await serve(services)
  const control = createServer((request, response) => {
    const id = /^\/context\/([^/?]+)$/.exec(request.url ?? "")?.[1]
    if (id === undefined) return response.writeHead(404).end()
    runtime.runPromise(readContext(id)).then(
      (result) => response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(result)),
      (error) => response.writeHead(500).end(String(error))
    )
  })
  await new Promise<void>((resolve) => control.listen(0, "127.0.0.1", resolve))
  return { port, control: (control.address() as AddressInfo).port }
}

/**
 * The least a real endpoint does: check the bearer token, read the build and its steps, answer JSON. Its
 * status and body for a request's method, URL and `Authorization` header.
 */
const rawAnswer = (token: string) => {
  const db = new Database(file, { readonly: true })
  const build = db.prepare<[string], object>("SELECT * FROM builds WHERE id = ?")
  const steps = db.prepare<[string], object>("SELECT * FROM build_steps WHERE build_id = ? ORDER BY idx")
  const authorization = `Bearer ${token}`
  const route = /^\/api\/builds\/([^/?]+)$/
  return (method: string, url: string, credential: string | undefined) => {
    if (credential !== authorization) return { status: 401, body: { error: "unauthorized" } }
    const id = method === "GET" ? route.exec(url)?.[1] : undefined
    const row = id === undefined ? undefined : build.get(id)
    if (row === undefined) return { status: 404, body: { error: "not_found" } }
    return { status: 200, body: { ...row, steps: steps.all(id!) } }
  }
}

const raw = (token: string) => {
  const answer = rawAnswer(token)
  const server = createServer((request, response) => {
    const { status, body } = answer(request.method ?? "", request.url ?? "", request.headers.authorization)
    const text = JSON.stringify(body)
    // A length, as Kiln sends, rather than chunked framing.
    response.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text)
    })
    response.end(text)
  })
  return new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port))
  )
}

/**
 * The same answers from Effect's own HTTP server and router with nothing of Kiln's: what a request costs
 * in the framework Kiln's server is built on.
 */
const effect = async (token: string) => {
  const answer = rawAnswer(token)
  const route = HttpRouter.add(
    "GET",
    "/api/builds/:id",
    HttpServerRequest.HttpServerRequest.useSync((request) => {
      const { status, body } = answer(request.method, request.url, request.headers.authorization)
      return HttpServerResponse.jsonUnsafe(body, { status })
    })
  )
  const runtime = ManagedRuntime.make(
    HttpRouter.serve(route, { disableLogger: true }).pipe(
      Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
    )
  )
  return portOf(runtime)
}

/** Answers each `{"write": <lines>}` from the parent once `write` has written that many lines. */
const onWrite = (write: (lines: number) => Promise<void>) =>
  process.on("message", (message: { readonly write: number }) =>
    write(message.write).then(() => process.send!("written"))
  )

/** Kiln's server, and a writer that appends the claimed build's log through storage as an engine would. */
const fanoutKiln = async (directory: string, buildId: Id.BuildId) => {
  const { port, runtime } = await serve(
    Layer.mergeAll(SqliteStorage.layer({ filename: file }), SourceStore.layer({ directory }))
  )
  const fence = { owner: "bench", attempt: 1 }
  onWrite((lines) =>
    runtime.runPromise(
      Effect.gen(function* () {
        const storage = yield* Storage.Storage
        for (let from = 1; from <= lines; from += batchLines) {
          const batch = Array.from({ length: Math.min(batchLines, lines - from + 1) }, (_, i) => ({
            seq: from + i,
            ts: at,
            stream: "stdout" as const,
            step: null,
            text: lineText(from + i)
          }))
          yield* storage.appendLogs(buildId, fence, batch)
        }
        yield* storage.transition(buildId, {
          _tag: "Succeeded",
          imageTag: null,
          imageDigest: null,
          at,
          ...fence
        })
      })
    )
  )
  return port
}

/**
 * The least a fan-out server does: every client gets a status frame when it connects, then each batch of
 * line frames as it is written (corked, as Kiln sends a page), then the end frame and a normal close. The
 * frames are made before the clock starts, so this is the sending alone.
 */
const fanoutRaw = async (lines: number) => {
  const frames = Array.from({ length: lines }, (_, i) => lineFrame(i + 1))
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  server.on("connection", (client) => client.send(statusFrame("running")))
  onWrite(async () => {
    for (let from = 0; from < lines; from += batchLines) {
      const batch = frames.slice(from, from + batchLines)
      for (const client of server.clients) {
        const socket = (client as unknown as { readonly _socket: Socket })._socket
        socket.cork()
        for (const frame of batch) client.send(frame)
        socket.uncork()
      }
      // A turn of the event loop between batches, as between Kiln's writes.
      await new Promise((resolve) => setImmediate(resolve))
    }
    for (const client of server.clients) {
      client.send(statusFrame("completed"))
      client.send(endFrame(lines))
      client.close(1000, "end of log")
    }
  })
  await new Promise((resolve) => server.once("listening", resolve))
  return (server.address() as AddressInfo).port
}

const ready: Ready =
  kind === "sources"
    ? await sources(file, extra)
    : kind === "fanout-kiln"
      ? { port: await fanoutKiln(extra, schema as Id.BuildId) }
      : kind === "fanout-raw"
        ? { port: await fanoutRaw(Number(file)) }
        : {
            port:
              kind === "kiln" ? await kiln(extra) : kind === "effect" ? await effect(extra) : await raw(extra)
          }
process.send!(ready)
