/**
 * `/api/webhooks` on the real server: endpoints made, read, changed and removed; the secret answered once
 * (on creation and rotation) and never again; validation of what a client sends; the workspace's cap; roles
 * and scope; and the delivery log, with pings and redeliveries. No engine runs here, so deliveries stay
 * pending: what they become is the sender's part, tested in core.
 */
import { Webhook as StandardWebhook } from "standardwebhooks"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startServer, type TestServer, workspaceWithApp } from "./fixtures/server.ts"

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

const secretPattern = /^whsec_[A-Za-z0-9+/]{43}=$/
const missingWebhook = "whk_01jz0000000000000000000000"

const workspace = async () => (await workspaceWithApp(server)).workspace.id

const create = async (workspaceId: string, body: Record<string, unknown> = {}, token = server.admin) =>
  call(server, "POST", "/api/webhooks", {
    token,
    body: { workspaceId, url: "https://hooks.example.com/kiln", ...body }
  })

describe("http › webhooks", () => {
  it("creates an endpoint and answers its secret once: neither GET nor the list shows it again", async () => {
    const workspaceId = await workspace()
    const created = await create(workspaceId, { types: ["build.finished", "build.queued"] })
    expect(created.status).toBe(201)
    expect(created.body).toEqual({
      id: expect.stringMatching(/^whk_/),
      workspaceId,
      url: "https://hooks.example.com/kiln",
      types: ["build.finished", "build.queued"],
      enabled: true,
      disabledReason: null,
      previousSecretExpiresAt: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      secret: expect.stringMatching(secretPattern)
    })
    // A Standard Webhooks library takes the secret as it is, and verifies what it signs.
    const receiver = new StandardWebhook(created.body.secret)
    const at = new Date()
    const headers = {
      "webhook-id": "msg_1",
      "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
      "webhook-signature": receiver.sign("msg_1", at, "{}")
    }
    expect(receiver.verify("{}", headers)).toEqual({})

    const { secret, ...view } = created.body
    const got = await call(server, "GET", `/api/webhooks/${view.id}`)
    expect(got.status).toBe(200)
    expect(got.body).toEqual(view)
    expect(got.text).not.toContain(secret)
    const listed = await call(server, "GET", `/api/webhooks?workspace_id=${workspaceId}`)
    expect(listed.body).toEqual({ data: [view] })
    expect(listed.text).not.toContain(secret)
    // Two endpoints never share a secret.
    expect((await create(workspaceId)).body.secret).not.toBe(secret)
  })

  it("refuses what is not an endpoint with a 400 that names the field", async () => {
    const workspaceId = await workspace()
    const refusals: Array<[Record<string, unknown>, string]> = [
      [{ url: "ftp://hooks.example.com/x" }, "payload.url"],
      [{ url: "javascript:alert(1)" }, "payload.url"],
      [{ url: "hooks.example.com/kiln" }, "payload.url"],
      [{ url: "https://user:password@hooks.example.com/" }, "payload.url"],
      [{ url: `https://hooks.example.com/${"x".repeat(2048)}` }, "payload.url"],
      [{ url: "" }, "payload.url"],
      [{ types: ["build.nope"] }, "payload.types[0]"],
      [{ types: ["build.queued", "build.queued"] }, "payload.types"],
      [{ types: "build.queued" }, "payload.types"],
      [{ enabled: "yes" }, "payload.enabled"],
      [{ secret: "whsec_mine" }, "payload.secret"]
    ]
    for (const [body, path] of refusals) {
      const reply = await create(workspaceId, body)
      expect([JSON.stringify(body).slice(0, 80), reply.status, reply.body.error]).toEqual([
        JSON.stringify(body).slice(0, 80),
        400,
        "invalid_request"
      ])
      expect(reply.body.message.startsWith(`${path}: `), reply.body.message).toBe(true)
    }
    // Addresses inside the host's network, however they are spelled: refused unless the host allows them
    // (a name is judged when a delivery connects, on every address it resolves to).
    for (const url of [
      "http://127.0.0.1:8080/",
      "http://2130706433/",
      "http://0x7f.1/",
      "http://[::1]/",
      "http://[::ffff:127.0.0.1]/",
      "http://10.0.0.1/",
      "http://192.168.1.1/",
      "http://169.254.169.254/latest/meta-data/",
      "http://[fe80::1]/"
    ]) {
      const reply = await create(workspaceId, { url })
      expect([url, reply.status, reply.body.message]).toEqual([
        url,
        400,
        expect.stringMatching(/^payload\.url: /)
      ])
    }
    const noUrl = await call(server, "POST", "/api/webhooks", { body: { workspaceId } })
    expect([noUrl.status, noUrl.body.message]).toEqual([400, expect.stringMatching(/^payload\.url: /)])
    // The longest URL allowed is accepted.
    const longest = `https://hooks.example.com/${"x".repeat(2048 - "https://hooks.example.com/".length)}`
    expect((await create(workspaceId, { url: longest })).status).toBe(201)
    const missing = await create("wsp_01jz0000000000000000000000")
    expect([missing.status, missing.body.message]).toEqual([
      404,
      "workspace wsp_01jz0000000000000000000000 not found"
    ])
    const patched = await call(server, "PATCH", `/api/webhooks/${(await create(workspaceId)).body.id}`, {
      body: { url: "file:///etc/passwd" }
    })
    expect([patched.status, patched.body.message]).toEqual([400, expect.stringMatching(/^payload\.url: /)])
  })

  it("takes private addresses when the host allows them, and still never a metadata address", async () => {
    const allowing = await startServer({ webhookAddresses: { allowPrivate: true } })
    try {
      const { workspace } = await workspaceWithApp(allowing)
      const at = (url: string) =>
        call(allowing, "POST", "/api/webhooks", {
          token: allowing.admin,
          body: { workspaceId: workspace.id, url }
        })
      const local = await at("http://127.0.0.1:4000/hooks")
      expect([local.status, local.body.url]).toEqual([201, "http://127.0.0.1:4000/hooks"])
      expect((await at("http://10.1.2.3/")).status).toBe(201)
      const metadata = await at("http://169.254.169.254/latest/meta-data/")
      expect([metadata.status, metadata.body.message]).toEqual([
        400,
        expect.stringMatching(/^payload\.url: /)
      ])
    } finally {
      await allowing.close()
    }
  })

  it("changes url, types and enabled with PATCH, and removes an endpoint with DELETE (204)", async () => {
    const workspaceId = await workspace()
    const { id } = (await create(workspaceId)).body
    const patched = await call(server, "PATCH", `/api/webhooks/${id}`, {
      body: { url: "http://hooks.example.com/v2", types: ["build.finished"], enabled: false }
    })
    expect(patched.status).toBe(200)
    expect(patched.body).toMatchObject({
      id,
      url: "http://hooks.example.com/v2",
      types: ["build.finished"],
      enabled: false,
      disabledReason: null
    })
    expect(patched.body.secret).toBeUndefined()
    // Fields left out stay as they are.
    const enabled = await call(server, "PATCH", `/api/webhooks/${id}`, { body: { enabled: true } })
    expect(enabled.body).toMatchObject({
      url: "http://hooks.example.com/v2",
      types: ["build.finished"],
      enabled: true
    })
    const removed = await call(server, "DELETE", `/api/webhooks/${id}`)
    expect([removed.status, removed.text]).toEqual([204, ""])
    for (const [method, path] of [
      ["GET", `/api/webhooks/${id}`],
      ["DELETE", `/api/webhooks/${id}`],
      ["GET", `/api/webhooks/${id}/deliveries`]
    ] as const) {
      const reply = await call(server, method, path)
      expect([method, path, reply.status, reply.body.message]).toEqual([
        method,
        path,
        404,
        `webhook ${id} not found`
      ])
    }
    expect((await call(server, "GET", `/api/webhooks?workspace_id=${workspaceId}`)).body.data).toEqual([])
  })

  it("rotates the secret: a new one, shown once, and the old one valid for the window asked (a day by default, a week at most)", async () => {
    const workspaceId = await workspace()
    const created = (await create(workspaceId)).body
    const before = Date.now()
    const rotated = await call(server, "POST", `/api/webhooks/${created.id}/rotate-secret`)
    expect(rotated.status).toBe(200)
    expect(rotated.body.secret).toMatch(secretPattern)
    expect(rotated.body.secret).not.toBe(created.secret)
    const expires = Date.parse(rotated.body.previousSecretExpiresAt)
    expect(expires).toBeGreaterThanOrEqual(before + 86_400_000 - 1000)
    expect(expires).toBeLessThanOrEqual(Date.now() + 86_400_000)
    const got = await call(server, "GET", `/api/webhooks/${created.id}`)
    expect(got.body.previousSecretExpiresAt).toBe(rotated.body.previousSecretExpiresAt)
    expect(got.text).not.toContain(rotated.body.secret)

    const shortly = await call(server, "POST", `/api/webhooks/${created.id}/rotate-secret`, {
      body: { previousValidForSeconds: 60 }
    })
    expect(Date.parse(shortly.body.previousSecretExpiresAt) - Date.now()).toBeLessThanOrEqual(60_000)
    expect(Date.parse(shortly.body.previousSecretExpiresAt) - Date.now()).toBeGreaterThan(55_000)
    const week = await call(server, "POST", `/api/webhooks/${created.id}/rotate-secret`, {
      body: { previousValidForSeconds: 604_800 }
    })
    expect(week.status).toBe(200)
    for (const seconds of [604_801, -1, 1.5, "60"]) {
      const reply = await call(server, "POST", `/api/webhooks/${created.id}/rotate-secret`, {
        body: { previousValidForSeconds: seconds }
      })
      expect([seconds, reply.status, reply.body.message]).toEqual([
        seconds,
        400,
        expect.stringMatching(/^payload\.previousValidForSeconds: /)
      ])
    }
    const missing = await call(server, "POST", `/api/webhooks/${missingWebhook}/rotate-secret`)
    expect([missing.status, missing.body.message]).toEqual([404, `webhook ${missingWebhook} not found`])
  })

  it("caps a workspace at 20 endpoints (409), and counts each workspace apart", async () => {
    const [full, other] = [await workspace(), await workspace()]
    for (let i = 0; i < 20; i++) expect((await create(full)).status).toBe(201)
    const refused = await create(full)
    expect([refused.status, refused.body.error]).toEqual([409, "conflict"])
    expect(refused.body.message).toMatch(/20/)
    expect((await create(other)).status).toBe(201)
    expect((await call(server, "GET", `/api/webhooks?workspace_id=${full}`)).body.data).toHaveLength(20)
  })

  it("pings an endpoint (202), lists its deliveries newest first, pages them with before, and redelivers one (202)", async () => {
    const workspaceId = await workspace()
    const { id } = (await create(workspaceId)).body
    const first = await call(server, "POST", `/api/webhooks/${id}/ping`)
    expect(first.status).toBe(202)
    expect(first.body).toMatchObject({
      id: expect.stringMatching(/^dlv_/),
      webhookId: id,
      workspaceId,
      eventId: expect.stringMatching(/^msg_/),
      eventType: "ping",
      status: "pending",
      attempts: 0,
      lastStatusCode: null,
      deliveredAt: null
    })
    const second = (await call(server, "POST", `/api/webhooks/${id}/ping`)).body
    // Each ping is an event of its own, with its own webhook-id.
    expect(second.eventId).not.toBe(first.body.eventId)
    const all = await call(server, "GET", `/api/webhooks/${id}/deliveries`)
    expect(all.body.data.map((d: { id: string }) => d.id)).toEqual([second.id, first.body.id])
    const newest = await call(server, "GET", `/api/webhooks/${id}/deliveries?limit=1`)
    expect(newest.body.data.map((d: { id: string }) => d.id)).toEqual([second.id])
    const older = await call(server, "GET", `/api/webhooks/${id}/deliveries?limit=1&before=${second.id}`)
    expect(older.body.data.map((d: { id: string }) => d.id)).toEqual([first.body.id])
    const oldest = await call(server, "GET", `/api/webhooks/${id}/deliveries?before=${first.body.id}`)
    expect(oldest.body.data).toEqual([])
    for (const [query, parameter] of [
      ["limit=0", "limit"],
      ["limit=101", "limit"],
      ["limit=ten", "limit"],
      ["before=yesterday", "before"],
      [`before=${id}`, "before"]
    ] as const) {
      const reply = await call(server, "GET", `/api/webhooks/${id}/deliveries?${query}`)
      expect([query, reply.status, reply.body.error]).toEqual([query, 400, "invalid_parameter"])
      expect(reply.body.message.startsWith(`${parameter}: `)).toBe(true)
    }

    const again = await call(server, "POST", `/api/webhooks/${id}/deliveries/${first.body.id}/redeliver`)
    expect(again.status).toBe(202)
    expect(again.body).toMatchObject({ id: first.body.id, eventId: first.body.eventId, status: "pending" })
    // A delivery is found only under its own endpoint.
    const otherEndpoint = (await create(workspaceId)).body.id
    const elsewhere = await call(
      server,
      "POST",
      `/api/webhooks/${otherEndpoint}/deliveries/${first.body.id}/redeliver`
    )
    expect([elsewhere.status, elsewhere.body.message]).toEqual([404, `delivery ${first.body.id} not found`])
    const missing = await call(server, "POST", `/api/webhooks/${missingWebhook}/ping`)
    expect([missing.status, missing.body.message]).toEqual([404, `webhook ${missingWebhook} not found`])
  })

  it("lets a read token read endpoints and deliveries but change nothing (403)", async () => {
    const workspaceId = await workspace()
    const { id } = (await create(workspaceId)).body
    const delivery = (await call(server, "POST", `/api/webhooks/${id}/ping`)).body.id
    const reader = await server.token("read", [workspaceId] as never)
    for (const path of [
      `/api/webhooks/${id}`,
      `/api/webhooks?workspace_id=${workspaceId}`,
      `/api/webhooks/${id}/deliveries`
    ]) {
      expect([path, (await call(server, "GET", path, { token: reader })).status]).toEqual([path, 200])
    }
    const writes: ReadonlyArray<[string, string, unknown?]> = [
      ["POST", "/api/webhooks", { workspaceId, url: "https://hooks.example.com/x" }],
      ["PATCH", `/api/webhooks/${id}`, { enabled: false }],
      ["DELETE", `/api/webhooks/${id}`],
      ["POST", `/api/webhooks/${id}/rotate-secret`],
      ["POST", `/api/webhooks/${id}/ping`],
      ["POST", `/api/webhooks/${id}/deliveries/${delivery}/redeliver`]
    ]
    for (const [method, path, body] of writes) {
      const reply = await call(server, method, path, { token: reader, body })
      expect([method, path, reply.status, reply.body.error]).toEqual([method, path, 403, "forbidden"])
    }
    // Nothing changed.
    expect((await call(server, "GET", `/api/webhooks/${id}`)).body.enabled).toBe(true)
    expect((await call(server, "GET", `/api/webhooks/${id}/deliveries`)).body.data).toHaveLength(1)
    const writer = await server.token("write", [workspaceId] as never)
    expect((await call(server, "POST", `/api/webhooks/${id}/ping`, { token: writer })).status).toBe(202)
  })

  it("keeps another workspace's endpoints out of sight: 404 as for a missing one, and left out of lists", async () => {
    const [mine, theirs] = [await workspace(), await workspace()]
    const own = (await create(mine)).body
    const foreign = (await create(theirs)).body
    const delivery = (await call(server, "POST", `/api/webhooks/${foreign.id}/ping`)).body.id
    const token = await server.token("write", [mine] as never)
    const asked: ReadonlyArray<[string, string, unknown?]> = [
      ["GET", `/api/webhooks/${foreign.id}`],
      ["PATCH", `/api/webhooks/${foreign.id}`, { enabled: false }],
      ["DELETE", `/api/webhooks/${foreign.id}`],
      ["POST", `/api/webhooks/${foreign.id}/rotate-secret`],
      ["POST", `/api/webhooks/${foreign.id}/ping`],
      ["GET", `/api/webhooks/${foreign.id}/deliveries`]
    ]
    for (const [method, path, body] of asked) {
      const reply = await call(server, method, path, { token, body })
      expect([method, path, reply.status, reply.body.message]).toEqual([
        method,
        path,
        404,
        `webhook ${foreign.id} not found`
      ])
    }
    const redeliver = await call(
      server,
      "POST",
      `/api/webhooks/${foreign.id}/deliveries/${delivery}/redeliver`,
      {
        token
      }
    )
    expect([redeliver.status, redeliver.body.message]).toEqual([404, `delivery ${delivery} not found`])
    const createThere = await create(theirs, {}, token)
    expect([createThere.status, createThere.body.message]).toEqual([404, `workspace ${theirs} not found`])
    const listThere = await call(server, "GET", `/api/webhooks?workspace_id=${theirs}`, { token })
    expect([listThere.status, listThere.body.message]).toEqual([404, `workspace ${theirs} not found`])
    const listed = await call(server, "GET", "/api/webhooks", { token })
    expect(listed.body.data.map((w: { id: string }) => w.id)).toEqual([own.id])
    // Theirs is as it was.
    const still = await call(server, "GET", `/api/webhooks/${foreign.id}`)
    expect(still.body).toMatchObject({ enabled: true, previousSecretExpiresAt: null })
    expect((await call(server, "GET", `/api/webhooks/${foreign.id}/deliveries`)).body.data).toHaveLength(1)
  })
})
