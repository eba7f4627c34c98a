/**
 * A webhook receiver (`npm run webhook-receiver`): a plain `node:http` server that checks every delivery's
 * signature with the `standardwebhooks` library before it believes a word of it, answers 2xx fast, and
 * prints each event once. Kiln retries a delivery that did not get a 2xx, always with the same
 * `webhook-id`, so a receiver that acts on events keeps the ids it has handled and skips them the second
 * time.
 *
 * Environment: `WEBHOOK_SECRET`, the `secret` that creating the endpoint (or rotating its secret) answered;
 * `PORT` (default 4000) and `HOST` (default 127.0.0.1), where it listens.
 */
import { createServer, type IncomingHttpHeaders } from "node:http"
import { Webhook, WebhookVerificationError } from "standardwebhooks"

const secret = process.env.WEBHOOK_SECRET
if (secret === undefined || !secret.startsWith("whsec_")) {
  console.error("Set WEBHOOK_SECRET to the endpoint's secret (whsec_…): POST /api/webhooks answers it once.")
  process.exit(2)
}
const port = Number(process.env.PORT ?? 4000)
const host = process.env.HOST ?? "127.0.0.1"
const verifier = new Webhook(secret)

/** Kiln's bodies are small; anything much larger is not from Kiln. */
const maxBodyBytes = 1024 * 1024
/** The ids handled lately, oldest first: enough to recognise retries, bounded so it cannot grow forever. */
const handled = new Set<string>()
const remembered = 10_000

interface Delivered {
  readonly type: string
  readonly timestamp: string
  readonly data: {
    readonly build?: { readonly id: string; readonly status: string }
    readonly step?: { readonly name: string; readonly status: string }
    readonly appVersion?: { readonly id: string; readonly status: string }
  }
}

const describe = ({ type, data }: Delivered) =>
  [
    type,
    data.build?.id ?? data.appVersion?.id,
    data.step?.name,
    data.build?.status ?? data.appVersion?.status
  ]
    .filter((part) => part !== undefined)
    .join(" ")

const headersOf = (headers: IncomingHttpHeaders): Record<string, string> =>
  Object.fromEntries(
    Object.entries(headers).flatMap(([name, value]) => (typeof value === "string" ? [[name, value]] : []))
  )

createServer((request, response) => {
  if (request.method !== "POST") {
    response.writeHead(405, { allow: "POST" }).end()
    return
  }
  const chunks: Array<Buffer> = []
  let size = 0
  request.on("data", (chunk: Buffer) => {
    size += chunk.length
    if (size > maxBodyBytes) {
      response.writeHead(413).end()
      request.destroy()
    } else chunks.push(chunk)
  })
  request.on("end", () => {
    // The signature covers the exact bytes sent: verify them before parsing anything.
    const body = Buffer.concat(chunks).toString("utf8")
    let event: Delivered
    try {
      event = verifier.verify(body, headersOf(request.headers)) as Delivered
    } catch (error) {
      if (!(error instanceof WebhookVerificationError)) throw error
      console.warn(`refused a delivery: ${error.message}`)
      response.writeHead(401).end()
      return
    }
    const id = request.headers["webhook-id"] as string
    if (handled.has(id)) {
      console.log(`${id} again (a retry): already handled`)
    } else {
      handled.add(id)
      if (handled.size > remembered) handled.delete(handled.values().next().value as string)
      console.log(`${event.timestamp} ${describe(event)}`)
    }
    response.writeHead(204).end()
  })
}).listen(port, host, () => console.log(`Receiving webhooks on http://${host}:${port}/`))
