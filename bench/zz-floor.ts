import { createServer } from "node:http"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import Database from "better-sqlite3"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"

const [file, token, port] = process.argv.slice(2) as [string, string, string]
const db = new Database(file, { readonly: true })
const build = db.prepare<[string], object>("SELECT * FROM builds WHERE id = ?")
const steps = db.prepare<[string], object>("SELECT * FROM build_steps WHERE build_id = ? ORDER BY idx")
const authorization = `Bearer ${token}`
const Route = HttpRouter.add(
  "GET",
  "/api/builds/*",
  HttpServerRequest.HttpServerRequest.use((request) =>
    Effect.sync(() => {
      if (request.headers.authorization !== authorization)
        return HttpServerResponse.jsonUnsafe({ error: "unauthorized" }, { status: 401 })
      const id = request.url.slice("/api/builds/".length)
      const row = build.get(id)
      if (row === undefined) return HttpServerResponse.jsonUnsafe({ error: "not_found" }, { status: 404 })
      return HttpServerResponse.jsonUnsafe({ ...row, steps: steps.all(id) })
    })
  )
)
const App = HttpRouter.serve(Route, { disableLogger: true }).pipe(
  Layer.provide(NodeHttpServer.layer(createServer, { port: Number(port), host: "127.0.0.1" }))
)
NodeRuntime.runMain(Layer.launch(App))
