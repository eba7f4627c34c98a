/**
 * One server for a benchmark, in a process of its own so that the load generator does not share its
 * event loop: `kiln <file> <directory>` is Kiln's own server on the SQLite file, `raw <file> <token>` a
 * bare `node:http` server that answers the same build from the same file, and `sources <file | postgres
 * URL> <directory> [schema]` Kiln's server on SQLite with its archives in the directory, or on PostgreSQL with its
 * archives there too, plus a second port where `GET /context/<version id>` reads that version's whole build
 * context in the server and answers `{"bytes":…,"ms":…}`. Each listens on ephemeral ports of 127.0.0.1,
 * sends them to the parent, and exits when the parent goes.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { PgArchiveStore, PgStorage } from "@kiln/adapter-postgres"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, Authenticator, type Id, SourceStore, Storage } from "@kiln/core"
import { KilnHttp } from "@kiln/http"
import Database from "better-sqlite3"
import { Effect, Layer, ManagedRuntime, References, Stream } from "effect"
import { HttpServer } from "effect/http"
import type { Ready } from "./server-process.ts"

// Also when the parent dies without killing us: the IPC channel closes with it.
process.on("disconnect", () => process.exit())

const [kind, file, extra, schema] = process.argv.slice(2) as [string, string, string, string | undefined]

const serve = async (services: Layer.Layer<Storage.Storage | SourceStore.SourceStore, unknown>) => {
  const runtime = ManagedRuntime.make(
    // No rate limit: the bench measures a request's cost, thousands a second from one token.
    KilnHttp.layerServer({ port: 0, host: "127.0.0.1", rateLimit: false }).pipe(
      Layer.provideMerge(Authenticator.layer.pipe(Layer.provideMerge(services))),
      // Errors still reach stderr; "Listening on …" would only interleave with the bench's lines.
      Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn"))
    )
  )
  const address = await runtime.runPromise(
    HttpServer.HttpServer.use((server) => Effect.succeed(server.address))
  )
  if (address._tag === "UnixPathAddress") throw new Error("expected a TCP address")
  return { port: address.port, runtime }
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

/** The least a real endpoint does: check the bearer token, read the build and its steps, answer JSON. */
const raw = (token: string) => {
  const db = new Database(file, { readonly: true })
  const build = db.prepare<[string], object>("SELECT * FROM builds WHERE id = ?")
  const steps = db.prepare<[string], object>("SELECT * FROM build_steps WHERE build_id = ? ORDER BY idx")
  const authorization = `Bearer ${token}`
  const route = /^\/api\/builds\/([^/?]+)$/
  const server = createServer((request, response) => {
    const answer = (status: number, body: unknown) => {
      const text = JSON.stringify(body)
      // A length, as Kiln sends, rather than chunked framing.
      response.writeHead(status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(text)
      })
      response.end(text)
    }
    if (request.headers.authorization !== authorization) return answer(401, { error: "unauthorized" })
    const id = request.method === "GET" ? route.exec(request.url ?? "")?.[1] : undefined
    const row = id === undefined ? undefined : build.get(id)
    if (row === undefined) return answer(404, { error: "not_found" })
    answer(200, { ...row, steps: steps.all(id!) })
  })
  return new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port))
  )
}

const ready: Ready =
  kind === "sources"
    ? await sources(file, extra)
    : { port: kind === "kiln" ? await kiln(extra) : await raw(extra) }
process.send!(ready)
