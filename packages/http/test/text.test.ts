/**
 * Text a client sends, on every surface: a name with a control character is refused with a 400 naming
 * the field, and a JSON body that is not valid UTF-8 is refused rather than decoded with replacement
 * characters (which would store something other than what was sent).
 */
import { Access, App, Id, Storage } from "@kiln/core"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startServer, type TestServer, workspaceWithApp } from "./fixtures/server.ts"

// The push route checks bodies only once push events are configured.
process.env.KILN_PUSH_SECRET = "a test key with more than thirty-two bytes of text"

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

/** A JSON body with one byte that is not UTF-8 (0xff) inside a string. */
const notUtf8 = (json: string) => {
  const [before, after] = json.split("\u0000") as [string, string]
  return new Uint8Array(Buffer.concat([Buffer.from(before), Buffer.from([0xff]), Buffer.from(after)]))
}

describe("http › text in requests", () => {
  it("refuses a control character in a name or a handle, naming the field, on every surface", async () => {
    const { workspace, app } = await workspaceWithApp(server)
    const account = `/accounts/${Id.toUuid(workspace.id as never)}/builds`
    const expected = "expected a name without control characters (NUL, line breaks, …)"
    const cases = [
      ["/api/workspaces", { name: "Acme\u0000" }, "payload.name"],
      ["/api/workspaces", { name: "Ac\nme" }, "payload.name"],
      [
        "/api/apps",
        { workspaceId: workspace.id, handle: "web", name: "Web\u001b[31m", kind: "app" },
        "payload.name"
      ],
      ["/api/tokens", { name: "ci\u0007", workspaceIds: "*", role: "read" }, "payload.name"],
      [
        "/api/v1/deployments",
        { name: "Site\u0085", subdomain: "site", workspace_id: workspace.id },
        "payload.name"
      ],
      [
        `${account}/triggers`,
        { external_script_id: app.id, trigger_name: "main\u0000" },
        "payload.trigger_name"
      ]
    ] as const
    for (const [path, body, field] of cases) {
      const reply = await call(server, "POST", path, { body })
      expect([path, reply.status], reply.text).toEqual([path, 400])
      const message = path.startsWith("/accounts") ? reply.body.errors[0].message : reply.body.message
      expect(message).toBe(`${field}: ${expected}`)
    }
    const handle = await call(server, "POST", "/api/apps", {
      body: { workspaceId: workspace.id, handle: "we\u0000b", name: "Web", kind: "app" }
    })
    expect([handle.status, handle.body.message]).toEqual([400, expect.stringMatching(/^payload\.handle: /)])
  })

  it("still answers names stored before control characters were refused: lists keep working", async () => {
    const stored = "from before\u0000"
    const { workspace } = await workspaceWithApp(server)
    const renamed = await server.run(
      Effect.gen(function* () {
        const storage = yield* Storage.Storage
        const other = yield* storage.createWorkspace({ name: stored })
        const named = yield* storage.createApp(Access.all, {
          workspaceId: workspace.id as never,
          handle: "stored",
          name: stored,
          kind: "app",
          build: App.defaultBuildSettings
        })
        return { other, named }
      })
    )
    const workspaces = await call(server, "GET", `/api/workspaces?ids=${renamed.other.id}`)
    expect([workspaces.status, workspaces.body.data?.[0]?.name], workspaces.text).toEqual([200, stored])
    const apps = await call(server, "GET", `/api/apps?workspace_id=${workspace.id}`)
    expect(apps.status, apps.text).toBe(200)
    expect(apps.body.data.map((a: { name: string }) => a.name)).toContain(stored)
  })

  it("refuses a JSON body that is not valid UTF-8 with a 400, on every surface and the push route", async () => {
    const { workspace, app } = await workspaceWithApp(server)
    const account = `/accounts/${Id.toUuid(workspace.id as never)}/builds`
    const cases = [
      ["/api/workspaces", '{"name":"Acme\u0000"}'],
      ["/api/builds", '{"appVersionId":"\u0000"}'],
      ["/api/v1/deployments", `{"name":"S\u0000","subdomain":"s","workspace_id":"${workspace.id}"}`],
      [`${account}/triggers`, `{"external_script_id":"${app.id}","trigger_name":"m\u0000"}`],
      ["/api/events/push", `{"workspaceId":"${workspace.id}","deliveryId":"\u0000","repository":"r"}`]
    ] as const
    for (const [path, json] of cases) {
      const reply = await call(server, "POST", path, {
        body: notUtf8(json),
        headers: { "content-type": "application/json; charset=utf-8" }
      })
      expect([path, reply.status], reply.text).toEqual([path, 400])
      const message = path.startsWith("/accounts") ? reply.body.errors[0].message : reply.body.message
      expect(message).toBe("payload: the body is not valid UTF-8")
    }
    // Credentials are checked first, as for any body.
    const anonymous = await call(server, "POST", "/api/workspaces", {
      token: undefined,
      body: notUtf8('{"name":"\u0000"}'),
      headers: { "content-type": "application/json" }
    })
    expect(anonymous.status).toBe(401)
    const listed = await call(server, "GET", "/api/workspaces?limit=100")
    expect(listed.body.data.map((w: { name: string }) => w.name)).not.toContain("Acme\ufffd")
  })
})
