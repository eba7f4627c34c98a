/**
 * One delivery against a real HTTP receiver on 127.0.0.1 (an ephemeral port) that verifies signatures
 * with the `standardwebhooks` package, as a real receiver would.
 */
import * as http from "node:http"
import { type AddressInfo, getDefaultAutoSelectFamily, setDefaultAutoSelectFamily } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Result } from "effect"
import { Webhook } from "standardwebhooks"
import * as AddressPolicy from "../../src/internal/webhooks/addressPolicy.ts"
import {
  makeAgents,
  type SendOptions,
  type SendRequest,
  send,
  snippetBytes
} from "../../src/internal/webhooks/send.ts"
import { generateSecret } from "../../src/internal/webhooks/sign.ts"

const local: SendOptions = { policy: Result.getOrThrow(AddressPolicy.make({ allowPrivate: true })) }
const strict: SendOptions = { policy: AddressPolicy.strict }

interface Received {
  readonly path: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
  /** The sender's end of the connection: one port per connection. */
  readonly remotePort: number | undefined
}

interface Receiver {
  readonly port: number
  readonly url: (path: string) => string
  /** Requests whose body arrived, in order. */
  readonly received: Array<Received>
  /** Completes with a request's path when its connection closes. */
  readonly closed: (path: string) => Effect.Effect<void>
}

/**
 * A receiver whose path says how to answer: `/ok`, `/status/<n>`, `/redirect` (to `/target`), `/hang`,
 * `/stream/<n>` (status n, then a body that never ends), `/big-headers`.
 */
const receiver = Effect.acquireRelease(
  Effect.promise(async () => {
    const received: Array<Received> = []
    const closes = new Map<string, Array<() => void>>()
    const server = http.createServer((req, res) => {
      const path = req.url ?? ""
      req.socket.on("close", () => {
        for (const notify of closes.get(path) ?? []) notify()
      })
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        received.push({
          path,
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
          remotePort: req.socket.remotePort
        })
        const [, route, arg] = path.split("/")
        if (route === "ok" || route === "target") res.end("ok")
        else if (route === "status") res.writeHead(Number(arg)).end(`answered ${arg}: the receiver says no`)
        else if (route === "redirect") res.writeHead(302, { location: "/target" }).end()
        else if (route === "big-headers") res.writeHead(200, { "x-big": "a".repeat(4096) }).end("ok")
        else if (route === "stream") {
          res.writeHead(Number(arg))
          const chunk = Buffer.alloc(16 * 1024, "x")
          const more = () => {
            while (!res.destroyed && res.write(chunk));
          }
          res.on("drain", more)
          more()
        }
        // "/hang": no answer at all.
      })
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const { port } = server.address() as AddressInfo
    const closed = (path: string) =>
      Effect.callback<void>((resume) => {
        closes.set(path, [...(closes.get(path) ?? []), () => resume(Effect.void)])
      })
    return {
      server,
      receiver: { port, url: (path: string) => `http://127.0.0.1:${port}${path}`, received, closed }
    }
  }),
  ({ server }) =>
    Effect.promise(() => {
      server.closeAllConnections()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    })
).pipe(Effect.map(({ receiver }): Receiver => receiver))

const request = (url: string, secrets: SendRequest["secrets"] = generateSecret()): SendRequest => ({
  url,
  id: `msg_${Math.random().toString(36).slice(2)}`,
  body: JSON.stringify({ type: "build.finished", data: { id: "bld_1", outcome: "success" } }),
  secrets
})

/** A port nothing listens on: one the system gave out and took back. */
const closedPort = Effect.promise(async () => {
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
})

describe("send", () => {
  it.live("delivers a signed POST that a Standard Webhooks receiver verifies", () =>
    Effect.gen(function* () {
      const r = yield* receiver
      const secret = generateSecret()
      const req = request(r.url("/ok"), secret)
      const before = Math.floor(Date.now() / 1000)
      const result = yield* send(req, local)
      expect(result).toMatchObject({ _tag: "Delivered", status: 200 })
      expect(r.received).toHaveLength(1)
      const [{ headers, body }] = r.received as [Received]
      expect(body).toBe(req.body)
      expect(headers["content-type"]).toBe("application/json")
      expect(headers["user-agent"]).toBe("Kiln-Webhooks/0.1")
      expect(headers["webhook-id"]).toBe(req.id)
      expect(Number(headers["webhook-timestamp"])).toBeGreaterThanOrEqual(before)
      expect(Number(headers["webhook-timestamp"])).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000))
      const verified = new Webhook(secret).verify(body, headers as Record<string, string>)
      expect(verified).toEqual(JSON.parse(req.body))
      expect(() => new Webhook(secret).verify(`${body} `, headers as Record<string, string>)).toThrow(
        "No matching signature"
      )
      expect(() => new Webhook(generateSecret()).verify(body, headers as Record<string, string>)).toThrow(
        "No matching signature"
      )
    })
  )

  it.live(
    "reuses a kept-alive connection with agents, even after a capped answer; connects anew without",
    () =>
      Effect.gen(function* () {
        const r = yield* receiver
        const pooled = { ...local, agents: yield* makeAgents(4), maxResponseBytes: 1024 }
        for (const path of ["/ok", "/ok", "/stream/200", "/ok", "/ok"]) {
          expect(yield* send(request(r.url(path)), pooled)).toMatchObject({ _tag: "Delivered" })
          // The socket goes back to the pool just after the answer has been read.
          yield* Effect.sleep("10 millis")
        }
        const ports = r.received.map((received) => received.remotePort)
        // The capped answer's connection is destroyed: the sends after it share a new one.
        expect(new Set(ports.slice(0, 3)).size).toBe(1)
        expect(new Set(ports.slice(3)).size).toBe(1)
        expect(ports[3]).not.toBe(ports[0])
        for (const _ of [1, 2])
          expect(yield* send(request(r.url("/ok")), local)).toMatchObject({ _tag: "Delivered" })
        expect(new Set(r.received.slice(5).map((received) => received.remotePort)).size).toBe(2)
      }).pipe(Effect.scoped)
  )

  it.live("signs with both secrets during a rotation, so a receiver holding either verifies", () =>
    Effect.gen(function* () {
      const r = yield* receiver
      const [old, current] = [generateSecret(), generateSecret()]
      expect(yield* send(request(r.url("/ok"), [old, current]), local)).toMatchObject({ _tag: "Delivered" })
      const [{ headers, body }] = r.received as [Received]
      for (const secret of [old, current]) {
        expect(new Webhook(secret).verify(body, headers as Record<string, string>)).toEqual(JSON.parse(body))
      }
    })
  )

  it.live("reports a 500 as rejected, with the start of the receiver's answer", () =>
    Effect.gen(function* () {
      const r = yield* receiver
      const result = yield* send(request(r.url("/status/500")), local)
      expect(result).toMatchObject({
        _tag: "Rejected",
        status: 500,
        bodySnippet: "answered 500: the receiver says no"
      })
    })
  )

  it.live("reports a 410 as rejected with status 410, so the endpoint can be disabled", () =>
    Effect.gen(function* () {
      const r = yield* receiver
      expect(yield* send(request(r.url("/status/410")), local)).toMatchObject({
        _tag: "Rejected",
        status: 410
      })
    })
  )

  it.live("does not follow a redirect: a 302 is a rejection and its target is never asked", () =>
    Effect.gen(function* () {
      const r = yield* receiver
      expect(yield* send(request(r.url("/redirect")), local)).toMatchObject({ _tag: "Rejected", status: 302 })
      yield* Effect.sleep("100 millis")
      expect(r.received.map((received) => received.path)).toEqual(["/redirect"])
    })
  )

  it.live("gives up on a receiver that never answers when the timeout ends, and closes the connection", () =>
    Effect.gen(function* () {
      const r = yield* receiver
      const closed = yield* Effect.forkChild(r.closed("/hang"))
      const started = Date.now()
      const result = yield* send(request(r.url("/hang")), { ...local, timeout: "300 millis" })
      const elapsed = Date.now() - started
      expect(result).toMatchObject({ _tag: "Failed", error: "no answer within 300ms" })
      expect(result._tag === "Failed" && result.durationMs).toBeGreaterThanOrEqual(300)
      expect(elapsed).toBeGreaterThanOrEqual(300)
      expect(elapsed).toBeLessThan(1_000)
      yield* Fiber.join(closed).pipe(Effect.timeout("2 seconds"))
    })
  )

  it.live("reads at most the cap of a body that never ends, then drops the connection", () =>
    Effect.gen(function* () {
      const r = yield* receiver
      const options: SendOptions = { ...local, timeout: "5 seconds", maxResponseBytes: 64 * 1024 }
      const closed = yield* Effect.forkChild(r.closed("/stream/200"))
      const delivered = yield* send(request(r.url("/stream/200")), options)
      expect(delivered).toMatchObject({ _tag: "Delivered", status: 200 })
      expect(delivered._tag === "Delivered" && delivered.durationMs).toBeLessThan(2_000)
      yield* Fiber.join(closed).pipe(Effect.timeout("2 seconds"))

      const rejected = yield* send(request(r.url("/stream/500")), options)
      expect(rejected).toMatchObject({ _tag: "Rejected", status: 500, bodySnippet: "x".repeat(snippetBytes) })
      expect(rejected._tag === "Rejected" && rejected.durationMs).toBeLessThan(2_000)
    })
  )

  it.live("fails on response headers larger than the cap", () =>
    Effect.gen(function* () {
      const r = yield* receiver
      const result = yield* send(request(r.url("/big-headers")), { ...local, maxHeaderBytes: 1024 })
      expect(result).toMatchObject({ _tag: "Failed", error: "the response headers exceed 1024 bytes" })
    })
  )

  it.live("fails on a refused connection, a name that does not resolve and a TLS handshake that fails", () =>
    Effect.gen(function* () {
      const r = yield* receiver
      const port = yield* closedPort
      expect(yield* send(request(`http://127.0.0.1:${port}/`), local)).toMatchObject({
        _tag: "Failed",
        error: "connection refused"
      })
      expect(yield* send(request("http://kiln-test.invalid/"), local)).toMatchObject({
        _tag: "Failed",
        error: "the host name does not resolve"
      })
      const tls = yield* send(request(`https://127.0.0.1:${r.port}/ok`), local)
      expect(tls._tag === "Failed" && tls.error).toMatch(/^TLS failed \(\w+\)$/)
    })
  )

  it.live("destroys the request when interrupted", () =>
    Effect.gen(function* () {
      const r = yield* receiver
      const closed = yield* Effect.forkChild(r.closed("/hang"))
      const sending = yield* Effect.forkChild(send(request(r.url("/hang")), local))
      while (r.received.length === 0) yield* Effect.sleep("10 millis")
      yield* Fiber.interrupt(sending)
      yield* Fiber.join(closed).pipe(Effect.timeout("2 seconds"))
    })
  )

  it.live("fails, without throwing, on a message id no HTTP header can carry", () =>
    Effect.gen(function* () {
      const r = yield* receiver
      const result = yield* send({ ...request(r.url("/ok")), id: "msg_1\r\nx-injected: 1" }, local)
      expect(result).toMatchObject({ _tag: "Failed", error: "the request failed (ERR_INVALID_CHAR)" })
      expect(r.received).toEqual([])
    })
  )

  it.live("sends to a name resolving to 127.0.0.1 when the policy allows private addresses", () =>
    Effect.gen(function* () {
      const r = yield* receiver
      const result = yield* send(request(`http://localhost:${r.port}/ok`), local)
      expect(result).toMatchObject({ _tag: "Delivered", status: 200 })
    })
  )

  it.live("refuses a name resolving to 127.0.0.1 when it connects, and the receiver sees nothing", () =>
    Effect.gen(function* () {
      const r = yield* receiver
      const result = yield* send(request(`http://localhost:${r.port}/ok`), strict)
      expect(result._tag).toBe("Refused")
      expect(result._tag === "Refused" && result.reason).toMatch(/^(127\.0\.0\.1|::1) is a loopback address$/)
      yield* Effect.sleep("100 millis")
      expect(r.received).toEqual([])
    })
  )

  it.live("refuses and delivers the same when Node asks the lookup for one address, not all", () =>
    Effect.gen(function* () {
      const r = yield* receiver
      const previous = getDefaultAutoSelectFamily()
      yield* Effect.acquireRelease(
        Effect.sync(() => setDefaultAutoSelectFamily(false)),
        () => Effect.sync(() => setDefaultAutoSelectFamily(previous))
      )
      const refused = yield* send(request(`http://localhost:${r.port}/ok`), strict)
      expect(refused._tag === "Refused" && refused.reason).toMatch(/is a loopback address$/)
      expect(r.received).toEqual([])
      const delivered = yield* send(request(`http://localhost:${r.port}/ok`), local)
      expect(delivered).toMatchObject({ _tag: "Delivered", status: 200 })
    })
  )

  it.live("refuses loopback literals in every form before connecting", () =>
    Effect.gen(function* () {
      const r = yield* receiver
      const cases = [
        [`http://127.0.0.1:${r.port}/ok`, "127.0.0.1 is a loopback address"],
        [`http://[::1]:${r.port}/ok`, "::1 is a loopback address"],
        [
          `http://[::ffff:127.0.0.1]:${r.port}/ok`,
          "::ffff:7f00:1 is the IPv4-mapped form of 127.0.0.1, a loopback address"
        ],
        [`http://2130706433:${r.port}/ok`, "127.0.0.1 is a loopback address"],
        [`http://127.1:${r.port}/ok`, "127.0.0.1 is a loopback address"]
      ] as const
      for (const [url, reason] of cases) {
        expect(yield* send(request(url), strict), url).toEqual({ _tag: "Refused", reason })
      }
      yield* Effect.sleep("100 millis")
      expect(r.received).toEqual([])
    })
  )

  it.live("answers at once for an unusable URL, without connecting", () =>
    Effect.gen(function* () {
      expect(yield* send(request("ftp://example.com/"), strict)).toEqual({
        _tag: "Refused",
        reason: "expected an http:// or https:// URL with a host"
      })
    })
  )
})
