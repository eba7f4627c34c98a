/**
 * Mounting Kiln in a host's own server: a plain `node:http` server with routes of its own (`GET /`,
 * `GET /health`) that hands everything under `/ci` to Kiln's web-standard handler
 * (`KilnHttp.toWebHandler(…, { prefix: "/ci" })`), converting Node's request and response on the way.
 * The whole stack (SQLite, the Docker runner, the engine) runs in this process, over `.kiln/mount/`.
 *
 *   npm run mount
 *   curl http://127.0.0.1:3000/health
 *   curl -H "Authorization: Bearer $(cat .kiln/mount/admin-token)" http://127.0.0.1:3000/ci/api/workspaces
 *
 * A web handler cannot upgrade connections, so the log stream WebSocket is not served here: read logs
 * with `GET /ci/api/builds/{id}/logs?cursor=…`, or mount `KilnHttp.layer` on an Effect server instead.
 * Environment: `PORT` (default 3000), `HOST`, and the data directory's (`KILN_DATA_DIR`, …).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { resolve } from "node:path"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import type { Bootstrap } from "@kiln/core"
import { KilnHttp } from "@kiln/http"
import { Layer, ManagedRuntime } from "effect"
import * as DataDir from "../shared/DataDir.ts"
import * as LocalStack from "../shared/LocalStack.ts"

export const prefix = "/ci"

/** The host's request listener: its own routes, and Kiln under `prefix`. */
export const listener =
  (kiln: (request: Request) => Promise<Response>) => (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0]!
    if (path === prefix || path.startsWith(`${prefix}/`)) {
      forward(kiln, req, res).catch((error) => {
        console.error("kiln handler failed", error)
        if (res.headersSent) res.destroy()
        else res.writeHead(500).end()
      })
    } else if (req.method === "GET" && path === "/health") {
      res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}\n')
    } else if (req.method === "GET" && path === "/") {
      res
        .writeHead(200, { "content-type": "text/plain" })
        .end(`The host's own page. Kiln lives under ${prefix}/api.\n`)
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n")
    }
  }

/** Node's request as a web `Request` (body streamed, aborted if the client goes), and the answer back. */
const forward = async (
  kiln: (request: Request) => Promise<Response>,
  req: IncomingMessage,
  res: ServerResponse
) => {
  const gone = new AbortController()
  res.on("close", () => gone.abort())
  const headers = new Headers()
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    for (const value of values ?? []) headers.append(name, value)
  }
  const hasBody = req.method !== "GET" && req.method !== "HEAD"
  const response = await kiln(
    new Request(new URL(req.url ?? "/", `http://${req.headers.host ?? "localhost"}`), {
      method: req.method ?? "GET",
      headers,
      body: hasBody ? Readable.toWeb(req) : null,
      // Required by fetch's Request for a streamed body.
      duplex: "half",
      signal: gone.signal
    })
  )
  res.statusCode = response.status
  res.setHeaders(response.headers)
  if (response.body === null) res.end()
  else await pipeline(Readable.fromWeb(response.body), res)
}

export interface Mounted {
  readonly server: Server
  readonly url: string
  readonly bootstrapped: Bootstrap.Bootstrapped
  readonly close: () => Promise<void>
}

/** Starts the stack over `dataDir`, then the host server on `port`. */
export const start = async (
  dataDir: DataDir.DataDir,
  options: { readonly port: number; readonly host?: string | undefined; readonly stack?: LocalStack.Options }
): Promise<Mounted> => {
  const runtime = ManagedRuntime.make(LocalStack.layer(dataDir, options.stack))
  const bootstrapped = await runtime.runPromise(LocalStack.bootstrap(dataDir))
  // Kiln's routes get the services of the running stack, not a second copy of them.
  const kiln = KilnHttp.toWebHandler(Layer.succeedContext(await runtime.context()), { prefix })
  const server = createServer(listener(kiln.handler))
  await new Promise<void>((done) => server.listen(options.port, options.host ?? "127.0.0.1", done))
  const { address, port } = server.address() as AddressInfo
  return {
    server,
    url: `http://${address}:${port}`,
    bootstrapped,
    close: async () => {
      await new Promise((done) => server.close(done))
      await kiln.dispose()
      await runtime.dispose()
    }
  }
}

if (import.meta.main) {
  const dataDir = DataDir.fromEnv(resolve(DataDir.root, ".kiln/mount"))
  const mounted = await start(dataDir, {
    port: Number(process.env.PORT ?? 3000),
    host: process.env.HOST,
    // A database of its own needs a Docker namespace of its own: a stack's sweep takes the containers of
    // builds its database does not know for leftovers, and would remove those of `npm start`'s builds.
    stack: LocalStack.optionsFromEnv("mount")
  })
  console.log(`The host listens on ${mounted.url}, with Kiln under ${mounted.url}${prefix}`)
  console.log(`  curl ${mounted.url}/health`)
  console.log(
    `  curl -H "Authorization: Bearer $(cat ${DataDir.forDisplay(dataDir.adminToken)})" ${mounted.url}${prefix}/api/workspaces`
  )
  let stopping = false
  const stop = () => {
    // One Ctrl-C under npm arrives twice (from the terminal, and passed on by npm): the second must not
    // find the default handler, which would kill the process halfway through closing.
    if (stopping) return
    stopping = true
    console.log("Stopping…")
    mounted.close().then(() => process.exit(0))
  }
  process.on("SIGINT", stop)
  process.on("SIGTERM", stop)
}
