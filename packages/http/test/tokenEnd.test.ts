/**
 * Tokens that end while a stream is open, on the real server with real WebSocket clients: a follower of
 * the event feed or of a build's log whose token is revoked, or expires, is closed within 5 s with the
 * close code that says which (4403 revoked, 4401 expired); one let in by a ticket goes with its token; a
 * follower whose token still holds stays open.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, readyVersion, startServer, type TestServer, workspaceWithApp } from "./fixtures/server.ts"
import { type Opened, openStream } from "./fixtures/websocket.ts"

let server: TestServer
let workspace: string
let build: string
beforeAll(async () => {
  server = await startServer()
  const made = await workspaceWithApp(server)
  workspace = made.workspace.id
  const version = await readyVersion(server, made.app.id)
  // No engine: the build stays queued, so its log stream stays open.
  build = (await call(server, "POST", "/api/builds", { body: { appVersionId: version.id } })).body.id
})
afterAll(() => server?.close())

/** A token over the test's workspace, made through the API: its id and secret. */
const reader = async (expiresAt?: string) => {
  const made = await call(server, "POST", "/api/tokens", {
    body: { name: "reader", workspaceIds: [workspace], role: "read", ...(expiresAt ? { expiresAt } : {}) }
  })
  expect(made.status).toBe(201)
  return made.body as { id: string; token: string }
}

const opened = async (path: string, token?: string) => {
  const answer = await openStream(server.url, path, { token })
  if (!("opened" in answer)) throw new Error(`not opened: ${answer.refused.text}`)
  return answer.opened
}

/** How the stream closed, and how long after `since` (ms). */
const closing = async (stream: Opened, since: number) => ({
  code: await stream.closed,
  reason: await stream.reason,
  within: Date.now() - since
})

const stillOpen = (stream: Opened) =>
  Promise.race([stream.closed.then(() => false), new Promise((done) => setTimeout(() => done(true), 0))])

describe("streams whose token ends", () => {
  it("closes the event feed's follower with 4403 once its token is revoked, and leaves another open", async () => {
    const [revoked, kept] = [await reader(), await reader()]
    const feed = await opened("/api/events/stream", revoked.token)
    const other = await opened("/api/events/stream", kept.token)
    // A check or two passes first: a live token is not closed.
    await new Promise((done) => setTimeout(done, 2500))
    expect(await stillOpen(feed)).toBe(true)
    const at = Date.now()
    expect((await call(server, "DELETE", `/api/tokens/${revoked.id}`)).status).toBe(200)
    const closed = await closing(feed, at)
    expect([closed.code, closed.reason]).toEqual([4403, "token revoked"])
    expect(closed.within).toBeLessThan(5000)
    expect(await stillOpen(other)).toBe(true)
    other.cut()
  })

  it("closes a build log's follower with 4401 once its token expires", async () => {
    const expiresAt = new Date(Date.now() + 1500)
    const { token } = await reader(expiresAt.toISOString())
    const log = await opened(`/api/builds/${build}/logs/stream`, token)
    const closed = await closing(log, expiresAt.getTime())
    expect([closed.code, closed.reason]).toEqual([4401, "token expired"])
    expect(closed.within).toBeLessThan(5000)
    // The messages before the close were the log's: its status, and nothing more for a queued build.
    expect(log.messages).toEqual([{ type: "status", status: "pending" }])
  })

  it("closes a follower let in by a ticket once the ticket's token is revoked", async () => {
    const revoked = await reader()
    const ticket = (await call(server, "POST", `/api/builds/${build}/logs/ticket`, { token: revoked.token }))
      .body.ticket as string
    const log = await opened(`/api/builds/${build}/logs/stream?ticket=${encodeURIComponent(ticket)}`)
    const at = Date.now()
    expect((await call(server, "DELETE", `/api/tokens/${revoked.id}`)).status).toBe(200)
    const closed = await closing(log, at)
    expect([closed.code, closed.reason]).toEqual([4403, "token revoked"])
    expect(closed.within).toBeLessThan(5000)
  })
})
