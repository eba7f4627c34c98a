/**
 * Workspaces, apps, app versions and tokens over real HTTP: each endpoint's happy path, its documented
 * errors, roles, and the list contract they share.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { GitServer } from "@kiln/core/testing"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startServer, type TestServer, workspaceWithApp } from "./fixtures/server.ts"

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

/** A tar archive of one file, as `tar` makes it, gzipped. */
const archive = (dir: string, files: Record<string, string>) => {
  mkdirSync(dir, { recursive: true })
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return new Uint8Array(gzipSync(execFileSync("tar", ["-c", "-C", dir, "."])))
}

describe("http › workspaces", () => {
  it("creates, gets and lists workspaces", async () => {
    const created = await call(server, "POST", "/api/workspaces", { body: { name: "Acme" } })
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({ name: "Acme" })
    expect(created.body.id).toMatch(/^wsp_/)
    const got = await call(server, "GET", `/api/workspaces/${created.body.id}`)
    expect(got.status).toBe(200)
    expect(got.body).toEqual(created.body)
    const listed = await call(server, "GET", `/api/workspaces?ids=${created.body.id}`)
    expect(listed.body.data).toEqual([created.body])
    expect(listed.body.pageInfo).toMatchObject({ total: 1, hasNextPage: false, hasPreviousPage: false })
  })

  it("needs an admin token for all workspaces to create one", async () => {
    const { workspace } = await workspaceWithApp(server)
    for (const [role, scope] of [
      ["write", "*"],
      ["admin", [workspace.id]]
    ] as const) {
      const token = await server.token(role, scope as never)
      const refused = await call(server, "POST", "/api/workspaces", { token, body: { name: "Nope" } })
      expect(refused.status).toBe(403)
      expect(refused.body.error).toBe("forbidden")
    }
  })

  it("answers an unknown workspace with 404 in the error body", async () => {
    const missing = await call(server, "GET", "/api/workspaces/wsp_01jxxxxxxxxxxxxxxxxxxxxxxx")
    expect(missing.status).toBe(404)
    expect(missing.body).toEqual({ error: "not_found", message: expect.any(String) })
  })
})

describe("http › apps", () => {
  it("creates an app with its build settings completed from the defaults", async () => {
    const { workspace, app } = await workspaceWithApp(server)
    const created = await call(server, "POST", "/api/apps", {
      body: {
        workspaceId: workspace.id,
        handle: "web",
        name: "Web",
        kind: "app",
        build: { rootDirectory: "web", limits: { cpus: 2 } }
      }
    })
    expect(created.status).toBe(201)
    expect(created.body.build).toMatchObject({
      strategy: "dockerfile",
      rootDirectory: "web",
      dockerfilePath: "Dockerfile",
      limits: { cpus: 2 }
    })
    expect((await call(server, "GET", `/api/apps/${created.body.id}`)).body).toEqual(created.body)
    const listed = await call(server, "GET", `/api/apps?workspace_id=${workspace.id}`)
    expect(listed.body.data.map((row: { handle: string }) => row.handle).sort()).toEqual(
      [app.handle, "web"].sort()
    )
  })

  it("refuses a taken handle (409), settings that do not hold together (400) and an unknown workspace (404)", async () => {
    const { workspace, app } = await workspaceWithApp(server)
    const body = { workspaceId: workspace.id, handle: app.handle, name: "Again", kind: "app" }
    const taken = await call(server, "POST", "/api/apps", { body })
    expect(taken.status).toBe(409)
    expect(taken.body.error).toBe("conflict")
    const commands = await call(server, "POST", "/api/apps", {
      body: { ...body, handle: "cmd", build: { strategy: "commands" } }
    })
    expect(commands.status).toBe(400)
    expect(commands.body).toMatchObject({ error: "invalid_request" })
    expect(commands.body.message).toMatch(/^payload\.build/)
    const unknown = await call(server, "POST", "/api/apps", {
      body: { ...body, workspaceId: "wsp_01jxxxxxxxxxxxxxxxxxxxxxxx", handle: "x" }
    })
    expect(unknown.status).toBe(404)
  })

  it("rejects unknown fields and names the path of a bad one", async () => {
    const { workspace } = await workspaceWithApp(server)
    const extra = await call(server, "POST", "/api/apps", {
      body: { workspaceId: workspace.id, handle: "extra", name: "X", kind: "app", colour: "blue" }
    })
    expect(extra.status).toBe(400)
    expect(extra.body.error).toBe("invalid_request")
    expect(extra.body.message).toContain("colour")
    const bad = await call(server, "POST", "/api/apps", {
      body: { workspaceId: workspace.id, handle: "Not A Handle!", name: "X", kind: "app" }
    })
    expect(bad.status).toBe(400)
    expect(bad.body.message).toMatch(/^payload\.handle: /)
    expect(bad.body.details).toEqual([expect.objectContaining({ path: "payload.handle" })])
  })

  it("needs the write role to create an app", async () => {
    const { workspace } = await workspaceWithApp(server)
    const reader = await server.token("read", [workspace.id] as never)
    const refused = await call(server, "POST", "/api/apps", {
      token: reader,
      body: { workspaceId: workspace.id, handle: "readonly", name: "X", kind: "app" }
    })
    expect(refused.status).toBe(403)
    expect(
      (await call(server, "GET", `/api/apps?workspace_id=${workspace.id}`, { token: reader })).status
    ).toBe(200)
  })
})

describe("http › app versions", () => {
  it("takes a git version at a commit: ready at once", async () => {
    const { app } = await workspaceWithApp(server)
    const sha = "a".repeat(40)
    const created = await call(server, "POST", "/api/app-versions", {
      body: { appId: app.id, source: { type: "git", url: "https://example.com/r.git", commitSha: sha } }
    })
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({ status: "ready", commitSha: sha, appId: app.id })
    expect((await call(server, "GET", `/api/app-versions/${created.body.id}`)).body).toEqual(created.body)
    const listed = await call(server, "GET", `/api/app-versions?app_id=${app.id}`)
    expect(listed.body.data.map((v: { id: string }) => v.id)).toEqual([created.body.id])
  })

  it("resolves a git ref to its commit, and stores a ref git cannot resolve as failed", async () => {
    const { app } = await workspaceWithApp(server)
    const repositories = join(server.dir, "git")
    const head = GitServer.commit(join(repositories, "repository"), { Dockerfile: "FROM busybox\n" })
    const git = await GitServer.start(repositories)
    try {
      const resolved = await call(server, "POST", "/api/app-versions", {
        body: { appId: app.id, source: { type: "git", url: `${git.url}/repository`, ref: "main" } }
      })
      expect(resolved.status).toBe(201)
      expect(resolved.body).toMatchObject({ status: "ready", commitSha: head })
      const unknown = await call(server, "POST", "/api/app-versions", {
        body: { appId: app.id, source: { type: "git", url: `${git.url}/repository`, ref: "no-such-branch" } }
      })
      expect(unknown.status).toBe(201)
      expect(unknown.body).toMatchObject({
        status: "failed",
        commitSha: null,
        error: `ref "no-such-branch" does not exist in ${git.url}/repository`
      })
    } finally {
      await git.close()
    }
  })

  it("takes an archive upload as application/gzip, and refuses a second upload", async () => {
    const { app } = await workspaceWithApp(server)
    const created = await call(server, "POST", "/api/app-versions", {
      body: { appId: app.id, source: { type: "archive" } }
    })
    expect(created.body).toMatchObject({ status: "pending", source: { type: "archive" } })
    const bytes = archive(join(server.dir, "gzip-app"), { Dockerfile: "FROM busybox\n" })
    const uploaded = await call(server, "POST", `/api/app-versions/${created.body.id}/archive`, {
      body: bytes,
      headers: { "content-type": "application/gzip" }
    })
    expect(uploaded.status).toBe(200)
    expect(uploaded.body).toMatchObject({ status: "ready", source: { type: "archive" } })
    expect(uploaded.body.commitSha).toMatch(/^[0-9a-f]{64}$/)
    const again = await call(server, "POST", `/api/app-versions/${created.body.id}/archive`, {
      body: bytes,
      headers: { "content-type": "application/gzip" }
    })
    expect(again.status).toBe(409)
    expect(again.body.error).toBe("conflict")
  })

  it("refuses bytes that are not a gzipped tar, and leaves the version pending", async () => {
    const { app } = await workspaceWithApp(server)
    const created = await call(server, "POST", "/api/app-versions", {
      body: { appId: app.id, source: { type: "archive" } }
    })
    const refused = await call(server, "POST", `/api/app-versions/${created.body.id}/archive`, {
      body: new TextEncoder().encode("definitely not gzip"),
      headers: { "content-type": "application/gzip" }
    })
    expect(refused.status).toBe(400)
    expect(refused.body.error).toBe("invalid_archive")
    expect((await call(server, "GET", `/api/app-versions/${created.body.id}`)).body.status).toBe("pending")
  })

  it("refuses an archive for a git version (409) and an unknown app (404)", async () => {
    const { app } = await workspaceWithApp(server)
    const git = await call(server, "POST", "/api/app-versions", {
      body: {
        appId: app.id,
        source: { type: "git", url: "https://example.com/r.git", commitSha: "b".repeat(40) }
      }
    })
    const refused = await call(server, "POST", `/api/app-versions/${git.body.id}/archive`, {
      body: new Uint8Array([31, 139]),
      headers: { "content-type": "application/gzip" }
    })
    expect(refused.status).toBe(409)
    const unknown = await call(server, "POST", "/api/app-versions", {
      body: { appId: "app_01jxxxxxxxxxxxxxxxxxxxxxxx", source: { type: "archive" } }
    })
    expect(unknown.status).toBe(404)
  })
})

describe("http › tokens", () => {
  it("creates a token whose secret is shown once, works at once, and stops working when revoked", async () => {
    const { workspace } = await workspaceWithApp(server)
    const created = await call(server, "POST", "/api/tokens", {
      body: { name: "ci", workspaceIds: [workspace.id], role: "read" }
    })
    expect(created.status).toBe(201)
    expect(created.body.token).toMatch(/^kiln_pat_/)
    const secret: string = created.body.token
    const { token: _secret, ...shown } = created.body
    expect((await call(server, "GET", `/api/tokens/${created.body.id}`)).body).toEqual(shown)
    const listed = await call(server, "GET", `/api/tokens?ids=${created.body.id}`)
    expect(listed.body.data).toEqual([shown])
    expect(listed.text).not.toContain(secret)
    expect((await call(server, "GET", `/api/workspaces/${workspace.id}`, { token: secret })).status).toBe(200)
    const revoked = await call(server, "DELETE", `/api/tokens/${created.body.id}`)
    expect(revoked.status).toBe(200)
    expect(revoked.body.revokedAt).toEqual(expect.any(String))
    const after = await call(server, "GET", `/api/workspaces/${workspace.id}`, { token: secret })
    expect(after.status).toBe(401)
    expect(after.body).toEqual({ error: "unauthorized", message: "missing or invalid credentials" })
  })

  it("grants no more than its creator holds", async () => {
    const { workspace } = await workspaceWithApp(server)
    const other = await workspaceWithApp(server)
    const scopedAdmin = await server.token("admin", [workspace.id] as never)
    const all = await call(server, "POST", "/api/tokens", {
      token: scopedAdmin,
      body: { name: "x", workspaceIds: "*", role: "read" }
    })
    expect(all.status).toBe(403)
    const outside = await call(server, "POST", "/api/tokens", {
      token: scopedAdmin,
      body: { name: "x", workspaceIds: [other.workspace.id], role: "read" }
    })
    expect(outside.status).toBe(404)
    const writer = await server.token("write", "*")
    expect(
      (
        await call(server, "POST", "/api/tokens", {
          token: writer,
          body: { name: "x", workspaceIds: "*", role: "read" }
        })
      ).status
    ).toBe(403)
    expect((await call(server, "GET", "/api/tokens", { token: writer })).status).toBe(403)
  })

  it("refuses a token that would be expired when it is made, and takes one that expires later", async () => {
    for (const expiresAt of ["2020-01-01T00:00:00.000Z", new Date(Date.now() - 1000).toISOString()]) {
      const refused = await call(server, "POST", "/api/tokens", {
        body: { name: "late", workspaceIds: "*", role: "read", expiresAt }
      })
      expect([refused.status, refused.body]).toEqual([
        400,
        {
          error: "invalid_request",
          message: `payload.expiresAt: expected a time in the future, not ${expiresAt}`
        }
      ])
    }
    const later = new Date(Date.now() + 3_600_000).toISOString()
    const created = await call(server, "POST", "/api/tokens", {
      body: { name: "later", workspaceIds: "*", role: "read", expiresAt: later }
    })
    expect([created.status, created.body.expiresAt]).toEqual([201, later])
  })

  it("answers 401 with no detail for a missing, malformed or unknown token", async () => {
    for (const headers of [
      {},
      { authorization: "Bearer" },
      { authorization: "Basic dXNlcjpwYXNz" },
      { authorization: "Bearer kiln_pat_0000000000000000000000000000000000000000000" },
      { authorization: `Bearer ${"x".repeat(5000)}` }
    ]) {
      const reply = await call(server, "GET", "/api/builds", { token: undefined, headers })
      expect(reply.status).toBe(401)
      expect(reply.body).toEqual({ error: "unauthorized", message: "missing or invalid credentials" })
    }
  })
})
