/**
 * One server for `bench/http.ts`, in a process of its own so that the load generator does not share its
 * event loop: `kiln <file> <directory>` is Kiln's own server on the SQLite file, `raw <file> <token>` a
 * bare `node:http` server that answers the same build from the same file. Both listen on an ephemeral
 * port of 127.0.0.1 and send it to the parent, and exit when the parent goes.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Authenticator, SourceStore } from "@kiln/core"
import { KilnHttp } from "@kiln/http"
import Database from "better-sqlite3"
import { Effect, Layer, ManagedRuntime, References } from "effect"
import { HttpServer } from "effect/http"
import type { Ready } from "./server-process.ts"

// Also when the parent dies without killing us: the IPC channel closes with it.
process.on("disconnect", () => process.exit())

const [kind, file, extra] = process.argv.slice(2) as [string, string, string]

const kiln = async (directory: string) => {
  const runtime = ManagedRuntime.make(
    KilnHttp.layerServer({ port: 0, host: "127.0.0.1" }).pipe(
      Layer.provideMerge(
        Authenticator.Authenticator.layer.pipe(
          Layer.provideMerge(
            Layer.mergeAll(
              SqliteStorage.layer({ filename: file }),
              SourceStore.SourceStore.layer({ directory })
            )
          )
        )
      ),
      // Errors still reach stderr; "Listening on …" would only interleave with the bench's lines.
      Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn"))
    )
  )
  const address = await runtime.runPromise(
    HttpServer.HttpServer.use((server) => Effect.succeed(server.address))
  )
  if (address._tag === "UnixPathAddress") throw new Error("expected a TCP address")
  return address.port
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

const port = kind === "kiln" ? await kiln(extra) : await raw(extra)
process.send!({ port } satisfies Ready)
