/**
 * A real webhook receiver for tests: an HTTP server on 127.0.0.1 that verifies each delivery's signature
 * with the `standardwebhooks` library, the way receivers will, and can be told to fail, hang, answer
 * `410 Gone` or go away and come back on the same port.
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { Effect, type Scope } from "effect"
import { Webhook } from "standardwebhooks"

export interface Arrival {
  /** The `webhook-id`. */
  readonly id: string
  readonly body: string
  /** Verified with one of the receiver's secrets. */
  readonly verified: boolean
  /** What the receiver answered (0: it never answered). */
  readonly status: number
  /**
   * Another request with this `webhook-id` was still open when this one came: the delivery was being sent
   * twice at once, which its lease exists to prevent.
   */
  readonly overlapped: boolean
}

/** `ok`: 204; `fail`: 500; `gone`: 410; `hang`: never answers. */
export type Mode = "ok" | "fail" | "gone" | "hang"

export interface Receiver {
  readonly url: string
  readonly arrivals: ReadonlyArray<Arrival>
  /** The arrivals it acknowledged (2xx): what Kiln counts as delivered. */
  readonly acknowledged: () => ReadonlyArray<Arrival>
  readonly setMode: (mode: Mode) => void
  /**
   * How long it takes to answer once a request has arrived (0 unless set): long enough, and a delivery
   * sent twice at once shows as two open requests (see `Arrival.overlapped`).
   */
  readonly setLatency: (ms: number) => void
  /** The secrets it verifies with; any one verifying is enough. */
  readonly setSecrets: (secrets: ReadonlyArray<string>) => void
  /** Stops listening and drops open connections; the port stays reserved for `resume`. */
  readonly goDown: Effect.Effect<void>
  readonly resume: Effect.Effect<void>
}

const listen = (server: Server, port: number) =>
  Effect.callback<number>((resume) => {
    server.listen(port, "127.0.0.1", () => resume(Effect.succeed((server.address() as AddressInfo).port)))
  })

const close = (server: Server, sockets: Set<Socket>) =>
  Effect.callback<void>((resume) => {
    for (const socket of sockets) socket.destroy()
    if (!server.listening) return resume(Effect.void)
    server.close(() => resume(Effect.void))
  })

export const start = (secrets: ReadonlyArray<string>): Effect.Effect<Receiver, never, Scope.Scope> =>
  Effect.gen(function* () {
    const arrivals: Array<Arrival> = []
    let mode: Mode = "ok"
    let latencyMs = 0
    let verifiers = secrets.map((secret) => new Webhook(secret))
    const sockets = new Set<Socket>()
    // Requests open per `webhook-id`, from their headers until their answer or their connection ends.
    const open = new Map<string, number>()
    const server = createServer((request, response) => {
      const id = String(request.headers["webhook-id"])
      const overlapped = (open.get(id) ?? 0) > 0
      open.set(id, (open.get(id) ?? 0) + 1)
      response.on("close", () => {
        const left = open.get(id)! - 1
        if (left === 0) open.delete(id)
        else open.set(id, left)
      })
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8")
        const headers = {
          "webhook-id": id,
          "webhook-timestamp": String(request.headers["webhook-timestamp"]),
          "webhook-signature": String(request.headers["webhook-signature"])
        }
        const verified = verifiers.some((verifier) => {
          try {
            verifier.verify(body, headers)
            return true
          } catch {
            return false
          }
        })
        const answer = () => {
          const status = mode === "ok" ? 204 : mode === "fail" ? 500 : mode === "gone" ? 410 : 0
          arrivals.push({ id, body, verified, status, overlapped })
          if (status !== 0) response.writeHead(status).end()
        }
        if (latencyMs === 0) answer()
        else setTimeout(answer, latencyMs)
      })
    })
    server.on("connection", (socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
    })
    const port = yield* listen(server, 0)
    yield* Effect.addFinalizer(() => close(server, sockets))
    return {
      url: `http://127.0.0.1:${port}/hooks`,
      arrivals,
      acknowledged: () => arrivals.filter((arrival) => arrival.status >= 200 && arrival.status < 300),
      setMode: (next) => {
        mode = next
      },
      setLatency: (ms) => {
        latencyMs = ms
      },
      setSecrets: (next) => {
        verifiers = next.map((secret) => new Webhook(secret))
      },
      goDown: close(server, sockets),
      resume: Effect.asVoid(listen(server, port))
    }
  })
