/**
 * Git sources from a hostile client, through every surface that takes one (app versions, deployments'
 * `repo_url`, accounts triggers and manual builds, push events), with a write token scoped to one
 * workspace: only https, http, ssh and scp-like URLs are taken, every other form is one 400 that names
 * the field and says nothing of the server's disk, nothing is stored, and git is never run on them. The
 * remotes are a real git server on 127.0.0.1; local repositories work only on a server that allows
 * their directory.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Access, GitUrl, Id, PushSignature, Storage, Trigger } from "@kiln/core"
import { GitServer } from "@kiln/core/testing"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startServer, type TestServer, workspaceWithApp } from "./fixtures/server.ts"

// The server key push-event secrets derive from, read by the push route.
process.env.KILN_PUSH_SECRET = "a test key with more than thirty-two bytes of text"

const repositories = mkdtempSync(join(tmpdir(), "kiln-git-sources-"))
const local = join(repositories, "app")
const head = GitServer.commit(local, { Dockerfile: "FROM busybox\n", "secret.txt": "host data\n" })
const marker = join(repositories, "pwned")

/** Every form but the remote ones: paths that exist and paths that do not, helpers and options. */
const hostile = [
  local,
  `${local}/.git`,
  "/etc",
  "/nonexistent/kiln",
  "relative/path",
  "../app",
  `file://${local}`,
  "file:///etc",
  `ext::sh -c touch% ${marker}`,
  `--upload-pack=touch ${marker}`,
  "git@-oProxyCommand=id:repo",
  "HTTPS://example.com/r.git"
]
const badRef = `--upload-pack=touch ${marker}`
const refIssue = GitUrl.checkRef(badRef)!

let server: TestServer
let git: GitServer.GitServer
/** The repository on the git server. */
let remote: string
beforeAll(async () => {
  server = await startServer()
  git = await GitServer.start(repositories, { redirects: { "/to-file": `file://${local}` } })
  remote = `${git.url}/app`
})
afterAll(async () => {
  await Promise.all([server.close(), git.close()])
  rmSync(repositories, { recursive: true, force: true })
})

/** A workspace with an app, and a write token for that workspace only. */
const tenant = async () => {
  const { workspace, app } = await workspaceWithApp(server)
  return { workspace, app, token: await server.token("write", [workspace.id as never]) }
}

/** Nothing was run: the marker a helper or an option would have made is not there. */
const nothingRan = () => expect(existsSync(marker)).toBe(false)

describe("http › git sources › app versions", () => {
  it("refuses every form but the remote ones with the same 400, by commit or by ref, and stores nothing", async () => {
    const { app, token } = await tenant()
    for (const url of hostile) {
      for (const pinned of [{ commitSha: head }, { ref: "main" }]) {
        const refused = await call(server, "POST", "/api/app-versions", {
          token,
          body: { appId: app.id, source: { type: "git", url, ...pinned } }
        })
        expect(refused.status).toBe(400)
        expect(refused.body).toEqual({
          error: "invalid_request",
          message: `payload.source.url: ${GitUrl.expected}`
        })
      }
    }
    const listed = await call(server, "GET", `/api/app-versions?app_id=${app.id}`, { token })
    expect(listed.body.data).toEqual([])
    nothingRan()
  })

  it("refuses a ref git would read as an option", async () => {
    const { app, token } = await tenant()
    const refused = await call(server, "POST", "/api/app-versions", {
      token,
      body: { appId: app.id, source: { type: "git", url: remote, ref: badRef } }
    })
    expect(refused.status).toBe(400)
    expect(refused.body.message).toBe(`payload.source.ref: ${refIssue}`)
    nothingRan()
  })

  it("resolves a ref on a remote, and fails a redirect to a file: URL without showing the disk", async () => {
    const { app, token } = await tenant()
    const resolved = await call(server, "POST", "/api/app-versions", {
      token,
      body: { appId: app.id, source: { type: "git", url: remote, ref: "main" } }
    })
    expect(resolved.status).toBe(201)
    expect(resolved.body).toMatchObject({ status: "ready", commitSha: head })
    const redirected = await call(server, "POST", "/api/app-versions", {
      token,
      body: { appId: app.id, source: { type: "git", url: `${git.url}/to-file`, ref: "main" } }
    })
    expect(redirected.status).toBe(201)
    expect(redirected.body.status).toBe("failed")
    expect(redirected.body.error).toContain('Protocol "file" not supported')
    expect(redirected.text).not.toContain(repositories)
  })
})

describe("http › git sources › deployments", () => {
  it("refuses a repo_url of any other form, and a branch git would read as an option, creating nothing", async () => {
    const { workspace, token } = await tenant()
    const subdomain = `site-${workspace.id.slice(-8)}`.toLowerCase()
    for (const [body, message] of [
      ...hostile.map((url) => [{ repo_url: url }, `payload.repo_url: ${GitUrl.expected}`] as const),
      [{ repo_url: remote, branch: badRef }, `payload.branch: ${refIssue}`] as const
    ]) {
      const refused = await call(server, "POST", "/api/v1/deployments", {
        token,
        body: { name: "Site", subdomain, ...body }
      })
      expect(refused.status).toBe(400)
      expect(refused.body).toEqual({ error: "invalid_request", message })
    }
    const listed = await call(server, "GET", "/api/v1/deployments", { token })
    expect(listed.body.map((deployment: { subdomain: string }) => deployment.subdomain)).not.toContain(
      subdomain
    )
    nothingRan()
  })

  it("deploys the branch head of a remote repo_url", async () => {
    const { workspace, token } = await tenant()
    const created = await call(server, "POST", "/api/v1/deployments", {
      token,
      body: { name: "Site", subdomain: `git-${workspace.id.slice(-8)}`.toLowerCase(), repo_url: remote }
    })
    expect(created.status).toBe(201)
    const deployed = await call(server, "POST", `/api/v1/deployments/${created.body.id}/deploy`, { token })
    expect(deployed.status).toBe(201)
    expect(deployed.body.commit_sha).toBe(head)
  })
})

describe("http › git sources › accounts triggers", () => {
  it("refuses a repository of any other form on create and update, and a branch that is an option", async () => {
    const { workspace, app, token } = await tenant()
    const base = `/accounts/${Id.toUuid(workspace.id as never)}/builds`
    const script = Id.toUuid(app.id as never)
    for (const url of hostile) {
      const refused = await call(server, "POST", `${base}/triggers`, {
        token,
        body: { external_script_id: script, trigger_name: "main", repository: url }
      })
      expect(refused.status).toBe(400)
      expect(refused.body.errors).toEqual([
        { code: expect.any(Number), message: `payload.repository: ${GitUrl.expected}` }
      ])
    }
    const listed = await call(server, "GET", `${base}/workers/${script}/triggers`, { token })
    expect(listed.body.result).toEqual([])

    const created = await call(server, "POST", `${base}/triggers`, {
      token,
      body: { external_script_id: script, trigger_name: "main", repository: remote }
    })
    expect(created.status).toBe(200)
    const trigger = `${base}/triggers/${created.body.result.trigger_uuid}`
    const update = await call(server, "PATCH", trigger, { token, body: { repository: local } })
    expect(update.status).toBe(400)
    expect(update.body.errors[0].message).toBe(`payload.repository: ${GitUrl.expected}`)

    const option = await call(server, "POST", `${trigger}/builds`, { token, body: { branch: badRef } })
    expect(option.status).toBe(400)
    expect(option.body.errors[0].message).toBe(`payload.branch: ${refIssue}`)
    const built = await call(server, "POST", `${trigger}/builds`, { token, body: { branch: "main" } })
    expect(built.status).toBe(200)
    expect(built.body.result.build_trigger_metadata.commit_hash).toBe(head)
    nothingRan()
  })

  it("builds nothing of a trigger whose repository was stored before it was refused", async () => {
    const { workspace, app, token } = await tenant()
    const stored = await server.run(
      Storage.Storage.use((storage) =>
        storage.createTrigger(Access.all, Trigger.input(app.id as never, "old", { repository: local }))
      )
    )
    const base = `/accounts/${Id.toUuid(workspace.id as never)}/builds`
    const trigger = `${base}/triggers/${Id.toUuid(stored.id)}`
    for (const body of [{ commit_hash: head }, { branch: "main" }]) {
      const refused = await call(server, "POST", `${trigger}/builds`, { token, body })
      expect(refused.status).toBe(409)
      expect(refused.body.errors[0].message).toBe(`the trigger's repository is refused: ${GitUrl.expected}`)
    }
    expect((await call(server, "GET", `/api/builds?app_id=${app.id}`)).body.data).toEqual([])
    // Its other fields can still be edited, and its repository replaced with one that is taken.
    const renamed = await call(server, "PATCH", trigger, { token, body: { trigger_name: "renamed" } })
    expect([renamed.status, renamed.body.result?.trigger_name], renamed.text).toEqual([200, "renamed"])
    const moved = await call(server, "PATCH", trigger, { token, body: { repository: local } })
    expect([moved.status, moved.body.errors?.[0]?.message]).toEqual([
      400,
      expect.stringMatching(/^payload\.repository: /)
    ])
  })
})

describe("http › git sources › push events", () => {
  it("refuses a push of a repository of any other form and builds nothing; a remote one builds", async () => {
    const { workspace, app } = await workspaceWithApp(server)
    const base = `/accounts/${Id.toUuid(workspace.id as never)}/builds`
    // A trigger of no repository in particular takes every push of the workspace.
    const trigger = await call(server, "POST", `${base}/triggers`, {
      body: { external_script_id: Id.toUuid(app.id as never), trigger_name: "any" }
    })
    expect(trigger.status).toBe(200)
    const secret = (await call(server, "GET", `/api/workspaces/${workspace.id}/push-secret`)).body.secret
    let delivery = 0
    const push = (repository: string) => {
      const body = JSON.stringify({
        workspaceId: workspace.id,
        deliveryId: `d-${++delivery}`,
        repository,
        branch: "main",
        commit: head
      })
      return call(server, "POST", "/api/events/push", {
        token: undefined,
        body,
        headers: {
          "content-type": "application/json",
          [PushSignature.header]: PushSignature.sign(secret, body)
        }
      })
    }
    for (const url of hostile) {
      const refused = await push(url)
      expect(refused.status).toBe(400)
      expect(refused.body).toEqual({
        error: "invalid_request",
        message: `payload.repository: ${GitUrl.expected}`
      })
    }
    const builds = await call(server, "GET", `/api/builds?app_id=${app.id}`)
    expect(builds.body.data).toEqual([])
    const accepted = await push(remote)
    expect(accepted.status).toBe(201)
    expect(accepted.body.builds).toHaveLength(1)
  })
})

describe("http › git sources › local repositories, where the server allows their directory", () => {
  let allowing: TestServer
  beforeAll(async () => {
    allowing = await startServer({ sources: { localRepositories: [repositories] } })
  })
  afterAll(() => allowing.close())

  it("resolves a repository inside it by path or file:/// URL, and refuses one outside it", async () => {
    const { app } = await workspaceWithApp(allowing)
    for (const url of [local, `file://${local}`]) {
      const resolved = await call(allowing, "POST", "/api/app-versions", {
        body: { appId: app.id, source: { type: "git", url, ref: "main" } }
      })
      expect(resolved.status).toBe(201)
      expect(resolved.body).toMatchObject({ status: "ready", commitSha: head })
    }
    for (const url of [
      "/etc",
      `${repositories}/../elsewhere`,
      "relative/app",
      `ext::sh -c touch% ${marker}`
    ]) {
      const refused = await call(allowing, "POST", "/api/app-versions", {
        body: { appId: app.id, source: { type: "git", url, commitSha: head } }
      })
      expect(refused.status).toBe(400)
      expect(refused.body.message).toBe(
        `payload.source.url: ${GitUrl.expected}, or a local repository in a directory this server allows`
      )
    }
    nothingRan()
  })
})
