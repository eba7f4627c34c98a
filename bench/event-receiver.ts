/**
 * The events benchmark's webhook receiver, on a worker thread of its own: a real receiver runs elsewhere,
 * so parsing its requests should not take the engine's core. It acknowledges every request at once and
 * notes when each event arrived; `counts` is shared with the benchmark (0: builds whose `build.finished`
 * arrived, the last event of a build, delivered in order; 1: duplicate arrivals), and the message
 * "arrivals" answers each event's latency by id.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { parentPort, workerData } from "node:worker_threads"

const counts = new Int32Array(workerData as SharedArrayBuffer)
const arrivals = new Map<string, number>()

const server = createServer({ keepAlive: true }, (request, response) => {
  const chunks: Array<Buffer> = []
  request.on("data", (chunk: Buffer) => chunks.push(chunk))
  request.on("end", () => {
    const id = String(request.headers["webhook-id"])
    if (arrivals.has(id)) Atomics.add(counts, 1, 1)
    else {
      const { type, timestamp } = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        type: string
        timestamp: string
      }
      arrivals.set(id, Date.now() - Date.parse(timestamp))
      if (type === "build.finished") Atomics.add(counts, 0, 1)
    }
    response.writeHead(204).end()
  })
})

server.listen(0, "127.0.0.1", () => {
  parentPort!.postMessage((server.address() as AddressInfo).port)
  parentPort!.on("message", () => {
    parentPort!.postMessage([...arrivals])
    server.close()
    server.closeAllConnections()
  })
})
