/**
 * Push events on a server without `KILN_PUSH_SECRET`: the push route and the push-secret endpoint both
 * answer 503 `not_configured`, saying what to set (a file of its own: the key is read from the environment).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startServer, type TestServer, workspaceWithApp } from "./fixtures/server.ts"

delete process.env.KILN_PUSH_SECRET

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

describe("http › push events, not configured", () => {
  it("answers 503 not_configured on the push route and the push-secret endpoint alike", async () => {
    const { workspace } = await workspaceWithApp(server)
    const expected = {
      error: "not_configured",
      message: "push events are not configured on this server: set KILN_PUSH_SECRET"
    }
    const secret = await call(server, "GET", `/api/workspaces/${workspace.id}/push-secret`)
    expect([secret.status, secret.body]).toEqual([503, expected])
    const push = await call(server, "POST", "/api/events/push", {
      token: undefined,
      body: { workspaceId: workspace.id, deliveryId: "d", repository: "https://example.com/r.git" }
    })
    expect([push.status, push.body]).toEqual([503, expected])
  })
})
