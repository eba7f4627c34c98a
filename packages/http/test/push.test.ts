/**
 * `POST /api/events/push` against the real server: signed pushes build what the triggers say, a
 * redelivery creates nothing, and a body that is unsigned, signed for another workspace or changed after
 * signing stores nothing at all.
 */
import { Access, Id, PushSignature, Query, Storage, Trigger } from "@kiln/core"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startServer, type TestServer, workspaceWithApp } from "./fixtures/server.ts"

// The server key, read by the push route and the push-secret endpoint.
process.env.KILN_PUSH_SECRET = "a test key with more than thirty-two bytes of text"

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

const repository = "https://git.example.com/acme/web.git"

/** Posts a push body, signed with `secret` unless a signature is given. */
const post = async (body: string, signature: string | undefined) => {
  const response = await fetch(`${server.url}/api/events/push`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(signature === undefined ? {} : { [PushSignature.header]: signature })
    },
    body
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

const stored = () =>
  server.run(
    Storage.Storage.use((storage) =>
      Effect.map(storage.listBuilds(Access.all, Query.first(100)), (page) => page.total)
    )
  )

describe("http › push events", () => {
  it("builds a signed push for a matching trigger, once however often it is delivered", async () => {
    const { workspace, app } = await workspaceWithApp(server)
    await server.run(
      Storage.Storage.use((storage) =>
        storage.createTrigger(
          Access.all,
          Trigger.input(app.id as never, "main", {
            repository,
            branchIncludes: ["main"],
            pathExcludes: ["docs/*"],
            buildCommand: "make",
            cachingEnabled: true
          })
        )
      )
    )
    const secret = await call(server, "GET", `/api/workspaces/${workspace.id}/push-secret`)
    expect(secret.status).toBe(200)
    expect(secret.body).toEqual({
      secret: expect.stringMatching(/^[0-9a-f]{64}$/),
      header: "x-kiln-signature",
      url: "/api/events/push"
    })
    const body = JSON.stringify({
      workspaceId: Id.toUuid(workspace.id),
      deliveryId: "d-1",
      repository,
      branch: "main",
      commit: "b".repeat(40),
      changedPaths: ["src/app.ts"],
      author: "ada",
      message: "ship it"
    })
    const signature = PushSignature.sign(secret.body.secret, body)
    const first = await post(body, signature)
    expect(first.status).toBe(201)
    expect(first.body).toMatchObject({ redelivered: false, ignored: [] })
    const builds = first.body.builds as Array<Record<string, unknown>>
    expect(builds).toEqual([
      expect.objectContaining({
        entityId: app.id,
        status: "pending",
        trigger: "auto",
        commitSha: "b".repeat(40),
        sourceEventId: first.body.eventId,
        createdBy: "ada"
      })
    ])
    const again = await post(body, signature)
    expect(again.status).toBe(200)
    expect(again.body).toMatchObject({ redelivered: true, eventId: first.body.eventId })
    expect((again.body.builds as Array<{ id: string }>).map((b) => b.id)).toEqual(builds.map((b) => b.id))

    const docsOnly = JSON.stringify({
      workspaceId: workspace.id,
      deliveryId: "d-2",
      repository,
      branch: "main",
      commit: "c".repeat(40),
      changedPaths: ["docs/a.md"]
    })
    const skipped = await post(docsOnly, PushSignature.sign(secret.body.secret, docsOnly))
    expect(skipped.body.builds).toEqual([
      expect.objectContaining({ status: "skipped", skipReason: expect.stringContaining("excluded") })
    ])
  })

  it("stores nothing for a push that is unsigned, signed for another workspace, or changed after signing", async () => {
    const a = await workspaceWithApp(server)
    const b = await workspaceWithApp(server)
    const secretOf = async (id: string) =>
      (await call(server, "GET", `/api/workspaces/${id}/push-secret`)).body.secret as string
    const [secretA, secretB] = [await secretOf(a.workspace.id), await secretOf(b.workspace.id)]
    expect(secretA).not.toBe(secretB)
    const body = JSON.stringify({
      workspaceId: a.workspace.id,
      deliveryId: "x",
      repository,
      branch: "main",
      commit: "d".repeat(40)
    })
    const before = await stored()
    for (const [label, text, signature] of [
      ["unsigned", body, undefined],
      ["signed for B", body, PushSignature.sign(secretB, body)],
      ["changed after signing", body.replace('"main"', '"prod"'), PushSignature.sign(secretA, body)],
      ["a truncated signature", body, PushSignature.sign(secretA, body).slice(0, -2)],
      ["not JSON", "{", PushSignature.sign(secretA, "{")]
    ] as const) {
      const reply = await post(text, signature)
      expect(reply.status, label).toBe(label === "not JSON" ? 400 : 401)
    }
    // Signed, but not a push: refused after the signature, naming the field.
    const odd = JSON.stringify({ workspaceId: a.workspace.id, deliveryId: "y", repository, surprise: 1 })
    const refused = await post(odd, PushSignature.sign(secretA, odd))
    expect(refused.status).toBe(400)
    expect(refused.body.message).toContain("surprise")
    expect(await stored()).toBe(before)
    // A workspace that does not exist, signed with what its secret would be.
    const ghost = "wsp_01jz0000000000000000000000" as Id.WorkspaceId
    const key = new TextEncoder().encode(process.env.KILN_PUSH_SECRET)
    const ghostBody = JSON.stringify({ workspaceId: ghost, deliveryId: "z", repository })
    const missing = await post(ghostBody, PushSignature.sign(PushSignature.secretFor(key, ghost), ghostBody))
    expect(missing.status).toBe(404)
    // Without the workspace's secret, an unknown workspace is answered exactly as a known one: no oracle.
    for (const workspaceId of [ghost, a.workspace.id]) {
      const text = JSON.stringify({ workspaceId, deliveryId: "w", repository })
      expect(await post(text, PushSignature.sign(secretB, text)), workspaceId).toEqual({
        status: 401,
        body: {
          error: "unauthorized",
          message: "missing or invalid x-kiln-signature: sign the raw body with the workspace's push secret"
        }
      })
    }
    // Only an admin reads a workspace's push secret.
    const reader = await server.token("write", [a.workspace.id] as never)
    expect(
      (await call(server, "GET", `/api/workspaces/${a.workspace.id}/push-secret`, { token: reader })).status
    ).toBe(403)
  })
})
