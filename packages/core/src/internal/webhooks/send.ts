/**
 * One webhook delivery attempt: a signed POST, and what came of it. The receiver is chosen by a client,
 * so everything it controls is bounded:
 * - where the request goes: every address the URL's name resolves to is judged by the address policy,
 *   and the connection goes to an address so judged (the `lookup` below is the only resolution, so a name
 *   cannot answer differently the second time: DNS rebinding); an IP literal is judged before connecting;
 * - redirects are not followed: a 3xx is a rejection like any other non-2xx answer;
 * - how long it takes: one timeout covers connecting, the headers and the body;
 * - how much is read: response headers up to `maxHeaderBytes`, the body up to `maxResponseBytes`, and
 *   then the connection is destroyed, so a receiver streaming forever cannot hold the sender.
 * Interrupting the attempt destroys the request.
 */
import { lookup as dnsLookup } from "node:dns"
import * as http from "node:http"
import * as https from "node:https"
import type { LookupFunction } from "node:net"
import { Clock, Data, Duration, Effect, Option, Result, type Scope } from "effect"
import type { AddressPolicy, Refusal } from "./addressPolicy.ts"
import { sign } from "./sign.ts"
import * as WebhookUrl from "./webhookUrl.ts"

export interface SendRequest {
  readonly url: string
  /** The `webhook-id`: the same on every attempt to deliver one message. */
  readonly id: string
  /** JSON, sent as it is and signed byte for byte. */
  readonly body: string
  /** The endpoint's secret, or its old and new secrets during a rotation. */
  readonly secrets: string | ReadonlyArray<string>
}

export interface SendOptions {
  readonly policy: AddressPolicy
  /** For the whole attempt; 10 seconds unless set. */
  readonly timeout?: Duration.Input
  /** The most of the response body read; 64 KiB unless set. */
  readonly maxResponseBytes?: number
  /** The most response header bytes accepted; 16 KiB unless set. */
  readonly maxHeaderBytes?: number
  /** Connections kept open between attempts (`makeAgents`); without them each attempt connects anew. */
  readonly agents?: Agents
}

export interface Agents {
  readonly http: http.Agent
  readonly https: https.Agent
}

/**
 * Keep-alive connections for one address policy's sends, closed with the scope. A pooled connection goes
 * only to the host and port it was opened for, and its address was judged by this policy when it
 * connected, so reusing it skips no check; it saves a connection (and a TLS handshake) per delivery.
 */
export const makeAgents = (maxSockets: number): Effect.Effect<Agents, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const options = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: "lifo" as const }
      return { http: new http.Agent(options), https: new https.Agent(options) }
    }),
    (agents) =>
      Effect.sync(() => {
        agents.http.destroy()
        agents.https.destroy()
      })
  )

export type SendResult = Data.TaggedEnum<{
  /** The receiver answered 2xx. */
  Delivered: { readonly status: number; readonly durationMs: number }
  /** The receiver answered anything else, 3xx included (`410` says the endpoint is gone). */
  Rejected: { readonly status: number; readonly durationMs: number; readonly bodySnippet: string }
  /** The address policy forbids the URL or an address its name resolves to; retrying cannot help. */
  Refused: { readonly reason: string }
  /** No answer: a timeout, a DNS, connection or TLS failure, a malformed response. */
  Failed: { readonly error: string; readonly durationMs: number }
}>

export const SendResult = Data.taggedEnum<SendResult>()

export const userAgent = "Kiln-Webhooks/0.1"

/** The longest part of a rejection's body kept for the delivery log, in bytes. */
export const snippetBytes = 1024

const defaults = { timeout: "10 seconds", maxResponseBytes: 64 * 1024, maxHeaderBytes: 16 * 1024 } as const

/** POSTs `request.body` to `request.url`, signed for this attempt's time. Never fails: see `SendResult`. */
export const send: (request: SendRequest, options: SendOptions) => Effect.Effect<SendResult> =
  Effect.fnUntraced(function* (request, options) {
    const url = WebhookUrl.check(request.url, options.policy)
    if (Result.isFailure(url)) return SendResult.Refused({ reason: url.failure })
    const limits = {
      maxResponseBytes: options.maxResponseBytes ?? defaults.maxResponseBytes,
      maxHeaderBytes: options.maxHeaderBytes ?? defaults.maxHeaderBytes
    }
    const started = yield* Clock.currentTimeMillis
    const timestamp = Math.floor(started / 1000)
    const headers = {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(request.body)),
      "user-agent": userAgent,
      "webhook-id": request.id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": sign(request.secrets, request.id, timestamp, request.body)
    }
    const timeout = Duration.fromInputUnsafe(options.timeout ?? defaults.timeout)
    const outcome = yield* post(url.success, headers, request.body, options, limits).pipe(
      Effect.timeoutOption(timeout)
    )
    const durationMs = (yield* Clock.currentTimeMillis) - started
    if (Option.isNone(outcome)) {
      return SendResult.Failed({ error: `no answer within ${Duration.format(timeout)}`, durationMs })
    }
    const answer = outcome.value
    if (answer._tag === "Refused") return SendResult.Refused({ reason: answer.refusal.message })
    if (answer._tag === "Error") {
      return SendResult.Failed({ error: describe(answer.error, limits.maxHeaderBytes), durationMs })
    }
    if (answer.status >= 200 && answer.status < 300) {
      return SendResult.Delivered({ status: answer.status, durationMs })
    }
    const bodySnippet = new TextDecoder().decode(answer.body.subarray(0, snippetBytes))
    return SendResult.Rejected({ status: answer.status, durationMs, bodySnippet })
  })

type Answer =
  | { readonly _tag: "Response"; readonly status: number; readonly body: Buffer }
  | { readonly _tag: "Refused"; readonly refusal: Refusal }
  | { readonly _tag: "Error"; readonly error: unknown }

/** What a lookup reports when the policy forbids an address the name resolved to. */
class RefusedAddress extends Error {
  readonly refusal: Refusal
  constructor(refusal: Refusal) {
    super(refusal.message)
    this.refusal = refusal
  }
}

const post = (
  url: URL,
  headers: http.OutgoingHttpHeaders,
  body: string,
  { policy, agents }: SendOptions,
  { maxResponseBytes, maxHeaderBytes }: { readonly maxResponseBytes: number; readonly maxHeaderBytes: number }
) =>
  Effect.callback<Answer>((resume) => {
    let settled = false
    const settle = (answer: Answer) => {
      if (settled) return
      settled = true
      resume(Effect.succeed(answer))
    }
    let req: http.ClientRequest
    try {
      const tls = url.protocol === "https:"
      req = (tls ? https : http).request({
        method: "POST",
        host: WebhookUrl.hostOf(url),
        port: url.port === "" ? undefined : Number(url.port),
        path: `${url.pathname}${url.search}`,
        headers,
        // Without this policy's own pool, a socket of its own: Node's global pool may hold sockets judged
        // by no policy at all.
        agent: agents === undefined ? false : tls ? agents.https : agents.http,
        // Node skips `lookup` for an IP literal; `WebhookUrl.check` has judged it.
        lookup: checkedLookup(policy),
        maxHeaderSize: maxHeaderBytes
      })
    } catch (error) {
      // Node throws for a header value it cannot send, such as a webhook-id with a line break.
      return settle({ _tag: "Error", error })
    }
    req.on("error", (error) =>
      settle(
        error instanceof RefusedAddress
          ? { _tag: "Refused", refusal: error.refusal }
          : { _tag: "Error", error }
      )
    )
    req.on("response", (res) => {
      const chunks: Array<Buffer> = []
      let size = 0
      const answer = () =>
        settle({ _tag: "Response", status: res.statusCode ?? 0, body: Buffer.concat(chunks) })
      res.on("data", (chunk: Buffer) => {
        chunks.push(chunk.subarray(0, maxResponseBytes - size))
        size += chunk.length
        if (size >= maxResponseBytes) {
          answer()
          res.destroy()
        }
      })
      res.on("end", answer)
      // The status is the answer even if the body breaks off.
      res.on("close", answer)
      res.on("error", answer)
    })
    req.end(body)
    return Effect.sync(() => req.destroy())
  })

/** Resolves once, refusing the whole name if the policy forbids any address it resolves to. */
const checkedLookup =
  (policy: AddressPolicy): LookupFunction =>
  (hostname, options, callback) =>
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error !== null) return callback(error, [])
      const refusal = addresses.map((entry) => policy.check(entry.address)).find((r) => r !== undefined)
      if (refusal !== undefined) return callback(new RefusedAddress(refusal), [])
      if (options.all === true) return callback(null, addresses)
      const [first] = addresses
      callback(null, first!.address, first!.family)
    })

/** A failure as the delivery log shows it: what happened, never a stack or a local path. */
const describe = (error: unknown, maxHeaderBytes: number): string => {
  const code = (error as { readonly code?: unknown } | null | undefined)?.code
  if (typeof code !== "string") return "the request failed"
  if (code === "ECONNREFUSED") return "connection refused"
  if (code === "ECONNRESET") return "the receiver closed the connection before answering"
  if (code === "ENOTFOUND") return "the host name does not resolve"
  if (code === "EAI_AGAIN") return "the host name could not be resolved (temporary DNS failure)"
  if (code === "ETIMEDOUT") return "connecting timed out"
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return "the host is unreachable"
  if (code === "HPE_HEADER_OVERFLOW") return `the response headers exceed ${maxHeaderBytes} bytes`
  if (code.startsWith("HPE_")) return `the response is not valid HTTP (${code})`
  if (/^(ERR_SSL_|ERR_TLS_|EPROTO$|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/.test(code)) {
    return `TLS failed (${code})`
  }
  return `the request failed (${code})`
}
