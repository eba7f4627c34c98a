/**
 * The deployments dialect (seed 001) against the real server: deployments, archive uploads, deploys,
 * bare-array build lists, plain-text logs with the documented refusals, and — with the real Docker
 * engine — a deploy followed over the raw-line WebSocket to success and a runnable image.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { gzipSync } from "node:zlib"
import { Access, App, Id, SourceStore, Storage } from "@kiln/core"
import * as DockerTesting from "@kiln/runner-docker/testing"
import { Effect, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { byHand, call, readyVersion, startServer, type TestServer } from "./fixtures/server.ts"

const namespace = `kiln-http-deployments-${process.pid}`
// Without an engine, builds stay where a test puts them; the Docker suite below has its own server.
let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

/** A workspace and a write token for just it: new deployments go to the token's only workspace. */
const workspace = async (server: TestServer) => {
  const created = await call(server, "POST", "/api/workspaces", { body: { name: "deployments" } })
  return { id: created.body.id as string, token: await server.token("write", [created.body.id] as never) }
}

/** Creates a deployment with the token and answers its id. */
const deploymentOf = async (server: TestServer, token: string, body: Record<string, unknown>) =>
  (await call(server, "POST", "/api/v1/deployments", { token, body })).body.id as string

const archiveOf = (server: TestServer, name: string, files: Record<string, string>) => {
  const dir = join(server.dir, name)
  mkdirSync(dir, { recursive: true })
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, file)), { recursive: true })
    writeFileSync(join(dir, file), text)
  }
  return new Uint8Array(gzipSync(execFileSync("tar", ["-c", "-C", dir, "."])))
}

const upload = (
  server: TestServer,
  token: string,
  deployment: string,
  parts: Record<string, Uint8Array | string>
) => {
  const form = new FormData()
  for (const [name, value] of Object.entries(parts)) {
    form.append(name, typeof value === "string" ? new Blob([value]) : new Blob([value]), `${name}.bin`)
  }
  return call(server, "POST", `/api/v1/deployments/${deployment}/upload`, { token, body: form })
}

describe("http › deployments dialect", () => {
  it("creates, lists and gets deployments, in the documented fields", async () => {
    const { id: workspaceId, token } = await workspace(server)
    const archive = await call(server, "POST", "/api/v1/deployments", {
      token,
      body: { name: "My App", subdomain: `my-app-${process.pid}` }
    })
    expect(archive.status).toBe(201)
    expect(archive.body).toEqual({
      id: expect.stringMatching(uuid),
      name: "My App",
      subdomain: `my-app-${process.pid}`,
      repo_url: null,
      branch: null,
      dockerfile_path: "Dockerfile",
      source_type: "archive",
      status: "created",
      created_at: expect.stringMatching(iso),
      updated_at: expect.stringMatching(iso)
    })
    const git = await call(server, "POST", "/api/v1/deployments", {
      token,
      body: {
        name: "From git",
        subdomain: `from-git-${process.pid}`,
        repo_url: "https://git.example.com/acme/web.git",
        branch: "production",
        dockerfile_path: "docker/Dockerfile"
      }
    })
    expect(git.body).toMatchObject({
      repo_url: "https://git.example.com/acme/web.git",
      branch: "production",
      source_type: "git",
      dockerfile_path: "docker/Dockerfile"
    })
    const listed = await call(server, "GET", "/api/v1/deployments", { token })
    expect(Array.isArray(listed.body)).toBe(true)
    expect(listed.body.map((d: { id: string }) => d.id).sort()).toEqual([archive.body.id, git.body.id].sort())
    expect((await call(server, "GET", `/api/v1/deployments/${archive.body.id}`, { token })).body).toEqual(
      archive.body
    )
    // The admin token covers every workspace: it must say which.
    const ambiguous = await call(server, "POST", "/api/v1/deployments", {
      body: { name: "x", subdomain: "x" }
    })
    expect(ambiguous.status).toBe(400)
    expect(ambiguous.body.message).toContain("workspace_id")
    const named = await call(server, "POST", "/api/v1/deployments", {
      body: { name: "x", subdomain: `x-${process.pid}`, workspace_id: workspaceId }
    })
    expect(named.status).toBe(201)
  })

  it("takes the documented source_type, and refuses one that contradicts repo_url before making anything", async () => {
    const { token } = await workspace(server)
    const create = (body: Record<string, unknown>) =>
      call(server, "POST", "/api/v1/deployments", { token, body })
    const git = await create({
      name: "Git",
      subdomain: `typed-git-${process.pid}`,
      source_type: "git",
      repo_url: "https://git.example.com/acme/typed.git"
    })
    expect([git.status, git.body.source_type, git.body.branch]).toEqual([201, "git", "main"])
    const archive = await create({
      name: "Archive",
      subdomain: `typed-archive-${process.pid}`,
      source_type: "archive"
    })
    expect([archive.status, archive.body.source_type, archive.body.repo_url]).toEqual([201, "archive", null])
    for (const [body, says] of [
      [{ source_type: "git" }, 'repo_url: needed when source_type is "git"'],
      [{ source_type: "git", repo_url: null }, 'repo_url: needed when source_type is "git"'],
      [
        { source_type: "archive", repo_url: "https://git.example.com/acme/typed.git" },
        "repo_url: an archive"
      ],
      [{ source_type: "archive", branch: "main" }, "branch: an archive"]
    ] as const) {
      const refused = await create({ name: "Refused", subdomain: `refused-${process.pid}`, ...body })
      expect(refused.status, JSON.stringify(body)).toBe(400)
      expect(refused.body, JSON.stringify(body)).toEqual({
        error: "invalid_request",
        message: expect.stringContaining(says)
      })
    }
    const unknown = await create({ name: "Unknown", subdomain: `unknown-${process.pid}`, source_type: "svn" })
    expect(unknown.status).toBe(400)
    // Nothing was made by the refusals: the subdomain is still free.
    expect((await create({ name: "Free", subdomain: `refused-${process.pid}` })).status).toBe(201)
  })

  it("uploads an archive, deploys it, and answers bare arrays and the documented errors", async () => {
    const { token } = await workspace(server)
    const deployment = await deploymentOf(server, token, {
      name: "Uploads",
      subdomain: `uploads-${process.pid}`
    })
    const nothing = await call(server, "POST", `/api/v1/deployments/${deployment}/deploy`, { token })
    expect(nothing.status).toBe(409)
    const archive = archiveOf(server, "contract", { Dockerfile: "FROM busybox\n" })
    // Parts are read in order: a dockerfile after the archive comes too late to use.
    const late = await upload(server, token, deployment, { archive, dockerfile: "FROM busybox\n" })
    expect(late.status).toBe(400)
    expect(late.body.message).toContain("before the archive")
    const uploaded = await upload(server, token, deployment, { archive })
    expect(uploaded.status, uploaded.text).toBe(200)
    expect(uploaded.body).toEqual({ status: "uploaded", size: archive.length })
    const first = await call(server, "POST", `/api/v1/deployments/${deployment}/deploy`, { token })
    const second = await call(server, "POST", `/api/v1/deployments/${deployment}/deploy`, { token })
    expect(first.status).toBe(201)
    expect(first.body).toEqual({
      id: expect.stringMatching(uuid),
      deployment_id: deployment,
      status: "pending",
      commit_sha: expect.stringMatching(/^[0-9a-f]{64}$/),
      image_tag: null,
      started_at: null,
      finished_at: null
    })
    const builds = await call(server, "GET", `/api/v1/deployments/${deployment}/builds`, { token })
    expect(builds.body.map((b: { id: string }) => b.id)).toEqual([second.body.id, first.body.id])
    const one = await call(server, "GET", `/api/v1/deployments/${deployment}/builds/${first.body.id}`, {
      token
    })
    expect(one.body).toEqual(builds.body[1])

    const notFound = { error: "not_found", message: "Build not found" }
    const missing = Id.toUuid("bld_01jz0000000000000000000000")
    for (const path of [
      `/api/v1/deployments/${deployment}/builds/${missing}`,
      `/api/v1/deployments/${deployment}/builds/nonsense`,
      `/api/v1/deployments/${deployment}/builds/${missing}/logs`
    ]) {
      const reply = await call(server, "GET", path, { token })
      expect(reply.status, path).toBe(404)
      expect(reply.body, path).toEqual(notFound)
    }
    // Another deployment's build, named under this one, is not found either.
    const other = await deploymentOf(server, token, { name: "Other", subdomain: `other-${process.pid}` })
    const elsewhere = await call(server, "GET", `/api/v1/deployments/${other}/builds/${first.body.id}`, {
      token
    })
    expect(elsewhere.body).toEqual(notFound)

    const unavailable = { error: "not_found", message: "Build logs not available" }
    const pending = await call(
      server,
      "GET",
      `/api/v1/deployments/${deployment}/builds/${first.body.id}/logs`,
      { token }
    )
    expect([pending.status, pending.body]).toEqual([404, unavailable])
    // Cancelled before it logged anything.
    await call(server, "POST", `/api/builds/${Id.fromUuid("bld", second.body.id)}/cancel`, { token })
    const cancelled = await call(
      server,
      "GET",
      `/api/v1/deployments/${deployment}/builds/${second.body.id}/logs`,
      { token }
    )
    expect([cancelled.status, cancelled.body]).toEqual([404, unavailable])
    expect(
      (await call(server, "GET", `/api/v1/deployments/${deployment}/builds/${second.body.id}`, { token }))
        .body.status
    ).toBe("cancelled")
  })

  it("lists every build of a deployment, newest first, and every deployment, streamed rather than cut at 100", async () => {
    const { id: workspaceId, token } = await workspace(server)
    const deployment = await deploymentOf(server, token, { name: "Busy", subdomain: `busy-${process.pid}` })
    const version = await readyVersion(server, Id.fromUuid("app", deployment)!)
    // Paging across storage pages is in lists.test.ts; here, more than the 100 the list used to stop at.
    const created = await server.run(
      Effect.flatMap(Storage.Storage, (storage) =>
        Effect.forEach(Array.from({ length: 250 }), () =>
          storage.createBuild(Access.all, {
            appVersionId: version.id as never,
            trigger: "manual",
            createdBy: "test"
          })
        )
      )
    )
    const builds = await call(server, "GET", `/api/v1/deployments/${deployment}/builds`, { token })
    expect(builds.status).toBe(200)
    const ids = builds.body.map((b: { id: string }) => b.id)
    expect(ids).toEqual(created.map((b) => Id.toUuid(b.id)).reverse())
    expect(new Set(ids).size).toBe(created.length)
    // Streamed as it is read: no length up front.
    expect(builds.headers.get("content-length")).toBeNull()
    expect(builds.body[0]).toEqual({
      id: Id.toUuid(created.at(-1)!.id),
      deployment_id: deployment,
      status: "pending",
      commit_sha: "c".repeat(40),
      image_tag: null,
      started_at: null,
      finished_at: null
    })

    const more = await server.run(
      Effect.flatMap(Storage.Storage, (storage) =>
        Effect.forEach(Array.from({ length: 120 }), (_, i) =>
          storage.createApp(Access.all, {
            workspaceId: workspaceId as never,
            handle: `many-${i}-${process.pid}`,
            name: `Many ${i}`,
            kind: "deployment",
            build: App.defaultBuildSettings
          })
        )
      )
    )
    const deployments = await call(server, "GET", "/api/v1/deployments", { token })
    expect(deployments.body.map((d: { id: string }) => d.id)).toEqual(
      [deployment, ...more.map((app) => Id.toUuid(app.id))].reverse()
    )
    expect(deployments.headers.get("content-length")).toBeNull()
    expect(deployments.body[0]).toMatchObject({ subdomain: `many-119-${process.pid}`, status: "created" })
    expect(deployments.body.at(-1)).toMatchObject({ id: deployment, status: "pending" })

    // An empty list is still an array.
    const empty = await deploymentOf(server, token, { name: "Empty", subdomain: `empty-${process.pid}` })
    const none = await call(server, "GET", `/api/v1/deployments/${empty}/builds`, { token })
    expect([none.status, none.text]).toEqual([200, "[]"])
  })

  it("puts a dockerfile part in place of the archive's Dockerfile, or adds it, at the deployment's path", async () => {
    const { token } = await workspace(server)
    const deployment = await deploymentOf(server, token, {
      name: "Own Dockerfile",
      subdomain: `own-${process.pid}`,
      dockerfile_path: "build/Dockerfile"
    })
    const contextOf = async (buildUuid: string) => {
      const build = (await call(server, "GET", `/api/builds/${Id.fromUuid("bld", buildUuid)}`, { token }))
        .body
      const version = (await call(server, "GET", `/api/app-versions/${build.appVersionId}`, { token })).body
      return server.run(
        Effect.flatMap(SourceStore.SourceStore, (sources) =>
          Effect.map(Stream.runCollect(sources.context(version, "")), (chunks) =>
            Buffer.concat(chunks.map((c) => Buffer.from(c)))
          )
        )
      )
    }
    const fileIn = (tar: Buffer, name: string) =>
      execFileSync("tar", ["-xOf", "-", name], { input: tar, encoding: "utf8" })
    for (const [label, files] of [
      ["replaces", { "build/Dockerfile": "FROM scratch\n", "app.txt": "app\n" }],
      ["adds", { "app.txt": "app\n" }]
    ] as const) {
      const uploaded = await upload(server, token, deployment, {
        dockerfile: "FROM busybox\nCOPY app.txt .\n",
        archive: archiveOf(server, `own-${label}`, files)
      })
      expect(uploaded.status, uploaded.text).toBe(200)
      const build = (await call(server, "POST", `/api/v1/deployments/${deployment}/deploy`, { token })).body
      const context = await contextOf(build.id)
      expect(fileIn(context, "build/Dockerfile"), label).toBe("FROM busybox\nCOPY app.txt .\n")
      expect(fileIn(context, "app.txt"), label).toBe("app\n")
    }
  })

  it("answers the whole log as plain text once there is one, however long", async () => {
    const { token } = await workspace(server)
    const deployment = await deploymentOf(server, token, { name: "Text", subdomain: `text-${process.pid}` })
    await upload(server, token, deployment, {
      archive: archiveOf(server, "text", { Dockerfile: "FROM busybox\n" })
    })
    const build = (await call(server, "POST", `/api/v1/deployments/${deployment}/deploy`, { token })).body
    const engine = await byHand(server, Id.fromUuid("bld", build.id)!)
    await engine.log(3)
    const logs = await call(server, "GET", `/api/v1/deployments/${deployment}/builds/${build.id}/logs`, {
      token
    })
    expect(logs.status).toBe(200)
    expect(logs.headers.get("content-type")).toContain("text/plain")
    expect(logs.text).toBe("line 1\nline 2\nline 3\n")
    // Past any page size, still all of it, in order.
    await engine.log(24_997)
    const long = await call(server, "GET", `/api/v1/deployments/${deployment}/builds/${build.id}/logs`, {
      token
    })
    expect(long.text).toBe(Array.from({ length: 25_000 }, (_, i) => `line ${i + 1}\n`).join(""))
  })
})

DockerTesting.describeDocker("http › deployments dialect end to end (Docker)", () => {
  let engineServer: TestServer
  beforeAll(async () => {
    engineServer = await startServer({ engine: { namespace, options: { concurrency: 2 } } })
  })
  afterAll(async () => {
    await engineServer.close()
    DockerTesting.removeNamespace(namespace)
  })

  it("deploys an upload: raw log lines over the WebSocket, then success, an image tag and a runnable image", async () => {
    const { token } = await workspace(engineServer)
    const subdomain = `hello-${process.pid}`
    const deployment = await deploymentOf(engineServer, token, { name: "Hello", subdomain })
    // The Dockerfile comes as its own part, as the dialect allows.
    const archive = archiveOf(engineServer, "hello", { "greeting.txt": "Hello from a deployment!\n" })
    const dockerfile =
      'FROM busybox\nCOPY greeting.txt .\nRUN echo "deploying" && cat greeting.txt\nCMD ["cat", "greeting.txt"]\n'
    expect((await upload(engineServer, token, deployment, { dockerfile, archive })).body.status).toBe(
      "uploaded"
    )
    const build = (await call(engineServer, "POST", `/api/v1/deployments/${deployment}/deploy`, { token }))
      .body
    const socket = new WebSocket(
      `${engineServer.url.replace(/^http/, "ws")}/api/v1/deployments/${deployment}/builds/${build.id}/logs/stream`,
      { headers: { authorization: `Bearer ${token}` } }
    )
    const lines: Array<string> = []
    socket.on("message", (data) => lines.push(String(data)))
    const code = await new Promise<number>((resolve) => socket.on("close", resolve))
    expect(code).toBe(1000)
    expect(lines).toContain("deploying")
    expect(lines).toContain("Hello from a deployment!")
    // Raw text, not the canonical stream's JSON messages.
    expect(lines.every((line) => !line.startsWith('{"type"'))).toBe(true)
    const done = (
      await call(engineServer, "GET", `/api/v1/deployments/${deployment}/builds/${build.id}`, { token })
    ).body
    expect(done).toMatchObject({
      status: "success",
      image_tag: expect.stringMatching(new RegExp(`^${subdomain}:[0-9a-f]{8}$`))
    })
    expect(done.finished_at).toMatch(iso)
    expect(DockerTesting.docker("run", "--rm", done.image_tag)).toBe("Hello from a deployment!")
    const text = await call(
      engineServer,
      "GET",
      `/api/v1/deployments/${deployment}/builds/${build.id}/logs`,
      {
        token
      }
    )
    expect(text.text.split("\n")).toEqual(expect.arrayContaining(lines))
    expect(
      (await call(engineServer, "GET", `/api/v1/deployments/${deployment}`, { token })).body.status
    ).toBe("success")
    // The same build, run by the real engine, through the accounts dialect.
    const { workspaceId } = (
      await call(engineServer, "GET", `/api/builds/${Id.fromUuid("bld", build.id)}`, { token })
    ).body
    const seen = await call(
      engineServer,
      "GET",
      `/accounts/${Id.toUuid(workspaceId)}/builds/builds/${build.id}`,
      { token }
    )
    expect(seen.body.result).toMatchObject({
      build_uuid: build.id,
      status: "stopped",
      build_outcome: "success",
      stopped_on: done.finished_at
    })
  }, 120_000)
})
