/**
 * Log stream tickets on the real server: what a browser's `new WebSocket(url)` — which cannot send an
 * `Authorization` header — uses to follow a build. Node's own `WebSocket` is that browser API, so it
 * follows both streams here with no header at all; refusals come back as the HTTP reply to the upgrade.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, Authenticator, type Build, Id, SourceStore } from "@kiln/core"
import { KilnHttp } from "@kiln/http"
import { Clock, DateTime, Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as LogTickets from "../src/internal/logTickets.ts"
import { byHand, call, readyVersion, startServer, type TestServer } from "./fixtures/server.ts"
import { openStream } from "./fixtures/websocket.ts"

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

/** A deployment of a fresh workspace, with a read token for just that workspace and a running build. */
const setUp = async () => {
  const workspace = (await call(server, "POST", "/api/workspaces", { body: { name: "tickets" } })).body
  const token = await server.token("read", [workspace.id] as never)
  const deployment = (
    await call(server, "POST", "/api/v1/deployments", {
      body: {
        name: "Tickets",
        subdomain: `tickets-${Math.random().toString(36).slice(2, 10)}`,
        workspace_id: workspace.id
      }
    })
  ).body.id as string
  const version = await readyVersion(server, Id.fromUuid("app", deployment)!)
  const queue = async () => {
    const build = (await call(server, "POST", "/api/builds", { body: { appVersionId: version.id } })).body
    return build.id as Build.Build["id"]
  }
  const build = await queue()
  return {
    workspace: workspace.id as string,
    token,
    deployment,
    build,
    engine: await byHand(server, build),
    queue
  }
}

const ticketPath = (deployment: string, build: string) =>
  `/api/v1/deployments/${deployment}/builds/${Id.toUuid(build)}/logs/ticket`
const streamPath = (deployment: string, build: string, ticket: string) =>
  `/api/v1/deployments/${deployment}/builds/${Id.toUuid(build)}/logs/stream?ticket=${encodeURIComponent(ticket)}`

/** Opens `url` as a browser does: Node's global WebSocket, no headers, no subprotocol. */
const browserSocket = (url: string) => {
  const socket = new WebSocket(url)
  const messages: Array<string> = []
  socket.onmessage = (event) => messages.push(String(event.data))
  const opened = new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve()
    socket.onerror = () => reject(new Error(`could not open ${url}`))
  })
  const closed = new Promise<number>((resolve) => {
    socket.onclose = (event) => resolve(event.code)
  })
  return { messages, opened, closed }
}

/** The refusal the server answers a ticket with, instead of upgrading. */
const refusal = async (path: string) => {
  const outcome = await openStream(server.url, path)
  if ("opened" in outcome) {
    outcome.opened.cut()
    throw new Error(`${path}: upgraded`)
  }
  return outcome.refused
}

describe("http › log stream tickets", () => {
  it("lets a browser's new WebSocket(url) follow a deployment build's log, with no token in the URL", async () => {
    const { token, deployment, build, engine } = await setUp()
    await engine.log(3)
    const before = Date.now()
    const issued = await call(server, "POST", ticketPath(deployment, build), { token })
    expect(issued.status, issued.text).toBe(200)
    const { ticket, url, expires_at } = issued.body
    expect(url).toBe(`${server.url.replace(/^http/, "ws")}${streamPath(deployment, build, ticket)}`)
    expect(url).not.toContain(token)
    const expiresAt = Date.parse(expires_at)
    expect(expiresAt).toBeGreaterThanOrEqual(before + 59_000)
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 60_000)

    // Behind a TLS proxy, the URL is the one the client reached; a forwarded host that is no host is not used.
    const proxied = async (headers: Record<string, string>) =>
      (await call(server, "POST", ticketPath(deployment, build), { token, headers })).body.url as string
    expect(
      await proxied({ "x-forwarded-proto": "https", "x-forwarded-host": "kiln.example.com:8443" })
    ).toMatch(
      new RegExp(
        `^wss://kiln\\.example\\.com:8443/api/v1/deployments/${deployment}/builds/[^/]+/logs/stream\\?ticket=`
      )
    )
    const unproxied = await proxied({ "x-forwarded-host": "evil.example/path?x=" })
    expect(unproxied.startsWith(`${server.url.replace(/^http/, "ws")}/api/v1/`), unproxied).toBe(true)

    const socket = browserSocket(url)
    await socket.opened
    await engine.log(2)
    await engine.succeed()
    expect(await socket.closed).toBe(1000)
    expect(socket.messages).toEqual(["line 1", "line 2", "line 3", "line 4", "line 5"])
  })

  it("is one mechanism for both streams: the canonical stream takes the same tickets, and issues its own", async () => {
    const { token, deployment, build, engine } = await setUp()
    await engine.log(2)
    await engine.succeed()
    const issued = await call(server, "POST", `/api/builds/${build}/logs/ticket`, { token })
    expect(issued.status, issued.text).toBe(200)
    expect(issued.body).toEqual({
      ticket: expect.any(String),
      url: `${server.url.replace(/^http/, "ws")}/api/builds/${build}/logs/stream?ticket=${encodeURIComponent(issued.body.ticket)}`,
      expiresAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/)
    })
    // The path takes the build's UUID form too, as every canonical path does.
    const byUuid = await call(server, "POST", `/api/builds/${Id.toUuid(build)}/logs/ticket`, { token })
    expect(byUuid.status, byUuid.text).toBe(200)
    const socket = browserSocket(issued.body.url)
    expect(await socket.closed).toBe(1000)
    const messages = socket.messages.map((text) => JSON.parse(text))
    expect(messages.filter((m) => m.type === "line").map((m) => m.text)).toEqual(["line 1", "line 2"])
    expect(messages.at(-1)).toMatchObject({ type: "end", status: "completed" })

    // A ticket from the deployments endpoint opens the canonical stream of the same build, and back.
    const dialect = (await call(server, "POST", ticketPath(deployment, build), { token })).body.ticket
    const canonical = await openStream(
      server.url,
      `/api/builds/${build}/logs/stream?ticket=${encodeURIComponent(dialect)}`
    )
    if (!("opened" in canonical)) throw new Error(canonical.refused.text)
    expect(await canonical.opened.closed).toBe(1000)
    const raw = browserSocket(
      `${server.url.replace(/^http/, "ws")}${streamPath(deployment, build, issued.body.ticket)}`
    )
    expect(await raw.closed).toBe(1000)
    expect(raw.messages).toEqual(["line 1", "line 2"])
  })

  it("refuses a ticket for another build, an expired or altered one, and one whose token was revoked or expired", async () => {
    const { workspace, token, deployment, build, queue } = await setUp()
    const ticketFor = async (forBuild: string, withToken = token) =>
      (await call(server, "POST", ticketPath(deployment, forBuild), { token: withToken })).body
        .ticket as string
    const unauthorized = (message: string) => ({ status: 401, body: { error: "unauthorized", message } })
    const expectRefused = async (path: string, message: string) => {
      const refused = await refusal(path)
      expect({ status: refused.status, body: refused.body }, path).toEqual(unauthorized(message))
    }

    const other = await queue()
    await expectRefused(
      streamPath(deployment, other, await ticketFor(build)),
      "the ticket is for another build"
    )

    const ticket = await ticketFor(build)
    const [body, tag] = ticket.split(".") as [string, string]
    const forged = Buffer.from(
      Buffer.from(body, "base64url").toString("utf8").replace(build, other)
    ).toString("base64url")
    const altered = "the ticket was altered, or issued by another deployment"
    await expectRefused(streamPath(deployment, other, `${forged}.${tag}`), altered)
    await expectRefused(streamPath(deployment, build, `${body}.${tag.slice(0, -2)}AA`), altered)
    await expectRefused(streamPath(deployment, build, "nonsense"), "not a ticket this API issued")

    // Issued by this server a little over a minute ago.
    const principal = await server.run(
      Effect.flatMap(Authenticator.Authenticator, (a) => a.authenticate(token))
    )
    const stale = await server.run(
      Clock.clockWith((clock) =>
        LogTickets.issue(principal, Effect.succeed({ id: build })).pipe(
          Effect.provideService(Clock.Clock, {
            ...clock,
            currentTimeMillisUnsafe: () => clock.currentTimeMillisUnsafe() - 61_000,
            currentTimeMillis: Effect.sync(() => clock.currentTimeMillisUnsafe() - 61_000),
            currentTimeNanosUnsafe: () => clock.currentTimeNanosUnsafe(),
            currentTimeNanos: clock.currentTimeNanos,
            monotonicTimeNanosUnsafe: () => clock.monotonicTimeNanosUnsafe(),
            monotonicTimeNanos: clock.monotonicTimeNanos,
            sleep: (duration) => clock.sleep(duration)
          })
        )
      )
    )
    await expectRefused(
      streamPath(deployment, build, stale.ticket),
      "the ticket has expired: ask for another"
    )

    // Revoked after the ticket was issued: refused at once, though the ticket itself has a minute left.
    const reader = (
      await call(server, "POST", "/api/tokens", {
        body: { name: "reader", workspaceIds: [workspace], role: "read" }
      })
    ).body
    const revokedTicket = await ticketFor(build, reader.token)
    expect((await call(server, "DELETE", `/api/tokens/${reader.id}`)).status).toBe(200)
    await expectRefused(streamPath(deployment, build, revokedTicket), "missing or invalid credentials")

    // A token that expires a moment after its ticket is issued: the ticket goes with it.
    const { secret: brief } = await server.run(
      Effect.flatMap(DateTime.now, (now) =>
        Authenticator.issueToken({
          name: "brief",
          role: "read",
          workspaceIds: [workspace as never],
          expiresAt: DateTime.add(now, { seconds: 1 })
        })
      )
    )
    const briefTicket = await ticketFor(build, brief)
    await new Promise((resolve) => setTimeout(resolve, 1_100))
    await expectRefused(streamPath(deployment, build, briefTicket), "missing or invalid credentials")
  })

  it("issues tickets only within the token's scope, and only for Kiln's own tokens", async () => {
    const { deployment, build } = await setUp()
    const outsider = await setUp()
    const refused = await call(server, "POST", ticketPath(deployment, build), { token: outsider.token })
    expect([refused.status, refused.body]).toEqual([
      404,
      { error: "not_found", message: "Deployment not found" }
    ])
    const canonical = await call(server, "POST", `/api/builds/${build}/logs/ticket`, {
      token: outsider.token
    })
    expect(canonical.status).toBe(404)

    // A host's own authenticator: its principals have no Kiln token to look up again when connecting.
    const dir = mkdtempSync(join(tmpdir(), "kiln-tickets-"))
    const host = Layer.succeed(Authenticator.Authenticator, {
      authenticate: () =>
        Effect.succeed({
          name: "host user",
          role: "admin",
          access: Access.all,
          tokenId: null,
          allWorkspaces: true
        }),
      forget: () => Effect.void
    })
    const { handler, dispose } = KilnHttp.toWebHandler(
      Layer.mergeAll(
        host,
        SqliteStorage.layer({ filename: join(dir, "kiln.db") }),
        SourceStore.layer({ directory: join(dir, "sources") })
      )
    )
    try {
      const reply = await handler(
        new Request(`http://kiln/api/builds/${build}/logs/ticket`, {
          method: "POST",
          headers: { authorization: "Bearer host-session" }
        })
      )
      expect(reply.status).toBe(403)
      expect(((await reply.json()) as { message: string }).message).toContain("bearer.<credential>")
    } finally {
      await dispose()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
