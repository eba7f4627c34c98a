/**
 * The examples as a user runs them: `npm start`'s server as a child process over a scratch data directory
 * and a free port, `npm run demo` against it (the image it builds must run), a graceful stop and a
 * restart on the same database; and requests through the mount example's host, under `/ci`.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as PgTesting from "@kiln/adapter-postgres/testing"
import { GitServer } from "@kiln/core/testing"
import * as DockerTesting from "@kiln/runner-docker/testing"
import pg from "pg"
import { afterAll, expect, it } from "vitest"
import * as DataDir from "../shared/DataDir.ts"
import { killAll, run } from "./fixtures/processes.ts"

const namespace = `kiln-e2e-server-${process.pid}`
const scratch = mkdtempSync(join(tmpdir(), "kiln-e2e-server-"))
afterAll(() => {
  killAll()
  if (DockerTesting.unavailable === undefined) {
    DockerTesting.removeNamespace(namespace)
    DockerTesting.removeNamespace(`${namespace}-mount`)
    DockerTesting.removeNamespace(`${namespace}-embed`)
  }
  rmSync(scratch, { recursive: true, force: true })
})

/** The start of the warning a process on a shared PostgreSQL gives when it pushes no images. */
const unsharedImages =
  "KILN_DATABASE_URL without KILN_REGISTRY: each image stays on the Docker engine of the host"

/** The rows of a list response. */
const rows = async (response: Response) => ((await response.json()) as { readonly data: unknown }).data

DockerTesting.describeDocker("e2e › examples/server and examples/demo", () => {
  const dataDir = DataDir.at(join(scratch, "server"))
  let env: Record<string, string>
  let url: string
  let cursor: string

  const startServer = async () => {
    const server = run("examples/server/main.ts", env)
    url = (await server.printed(/Kiln is listening on (\S+)/))[1]!
    return server
  }

  it("npm start issues an admin token (0600); npm run demo builds hello-app; SIGTERM stops it gracefully", async () => {
    env = {
      KILN_DATA_DIR: dataDir.dir,
      KILN_PORT: String(await DockerTesting.freePort()),
      KILN_DOCKER_NAMESPACE: namespace
    }
    const server = await startServer()
    await server.printed(/npm run demo/)
    expect(server.output()).toContain(`${url}/api/docs`)
    // The dashboard's URL, serving its page.
    expect(server.output()).toContain(`dashboard  ${url}/ui/`)
    const dashboard = await fetch(`${url}/ui/`)
    expect([dashboard.status, await dashboard.text()]).toEqual([
      200,
      expect.stringContaining('<base href="/ui/" />')
    ])
    expect(server.output()).toContain(`First start: created the workspace "Default"`)
    // One process on SQLite: its images are where its builds run.
    expect(server.output()).not.toContain(unsharedImages)
    expect(server.output()).toContain(`curl -H "Authorization: Bearer $(cat ${dataDir.adminToken})"`)
    expect(statSync(dataDir.adminToken).mode & 0o777).toBe(0o600)
    expect(statSync(dataDir.cursorSecret).mode & 0o777).toBe(0o600)
    const token = readFileSync(dataDir.adminToken, "utf8").trim()
    // The secret lives in the file only.
    expect(server.output()).not.toContain(token)
    const workspaces = await fetch(`${url}/api/workspaces`, { headers: { authorization: `Bearer ${token}` } })
    expect(workspaces.status).toBe(200)
    const page = (await workspaces.json()) as { data: unknown; pageInfo: { endCursor: string } }
    expect(page.data).toEqual([expect.objectContaining({ name: "Default" })])
    cursor = page.pageInfo.endCursor

    const demo = run("examples/demo/main.ts", { KILN_URL: url, KILN_DATA_DIR: dataDir.dir })
    const { code } = await demo.exited
    expect(code, demo.output()).toBe(0)
    expect(demo.output()).toContain("✔ completed")
    const tag = demo.output().match(/docker run --rm (\S+)\)/)?.[1]
    expect(tag).toMatch(/^hello-app:[0-9a-f]{8}$/)
    expect(DockerTesting.docker("run", "--rm", tag!)).toBe("Hello from Kiln!")

    // Graceful: the finalizers run, and the runtime exits as interrupted.
    server.child.kill("SIGTERM")
    expect((await server.exited).code).toBe(130)
    expect(server.output()).toContain("Stopping")
  }, 120_000)

  it("a restart reuses the database, its token and its cursor key", async () => {
    const token = readFileSync(dataDir.adminToken, "utf8").trim()
    const server = await startServer()
    await server.printed(/npm run demo/)
    expect(server.output()).toContain(`Admin token: ${dataDir.adminToken}`)
    expect(server.output()).not.toContain("First start")
    expect(readFileSync(dataDir.adminToken, "utf8").trim()).toBe(token)
    const builds = await fetch(`${url}/api/builds?limit=1`, { headers: { authorization: `Bearer ${token}` } })
    expect(builds.status).toBe(200)
    expect(await rows(builds)).toEqual([expect.objectContaining({ status: "completed" })])
    const after = await fetch(`${url}/api/workspaces?after=${cursor}`, {
      headers: { authorization: `Bearer ${token}` }
    })
    expect(after.status, await after.text()).toBe(200)
    server.child.kill("SIGTERM")
    await server.exited
  }, 60_000)
})

DockerTesting.describeDocker("e2e › examples/server on PostgreSQL", () => {
  it("KILN_DATABASE_URL keeps the state in PostgreSQL, where a second server finds it", async () => {
    const database = `kiln_e2e_server_${process.pid}`
    const admin = new pg.Client({ connectionString: PgTesting.databaseUrl() })
    await admin.connect()
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`)
    try {
      const databaseUrl = Object.assign(new URL(PgTesting.databaseUrl()), { pathname: `/${database}` })
      const start = async (name: string, env: Record<string, string> = {}) => {
        const dataDir = DataDir.at(join(scratch, name))
        const server = run("examples/server/main.ts", {
          KILN_DATA_DIR: dataDir.dir,
          KILN_PORT: String(await DockerTesting.freePort()),
          KILN_DOCKER_NAMESPACE: `${namespace}-pg`,
          KILN_DATABASE_URL: databaseUrl.toString(),
          KILN_CURSOR_SECRET: "shared by every server of this deployment",
          ...env
        })
        const url = (await server.printed(/Kiln is listening on (\S+)/))[1]!
        await server.printed(/npm run demo/)
        return { dataDir, server, url }
      }
      const first = await start("pg-first")
      expect(first.server.output()).toContain(
        `database   postgres://postgres:***@127.0.0.1:${databaseUrl.port}/${database}`
      )
      expect(first.server.output()).toContain("First start")
      expect(first.server.output()).toContain(unsharedImages)
      expect(first.server.output()).toContain(
        "so a build's image tag (the deployments API's image_tag too) names an image other hosts cannot pull"
      )
      const token = readFileSync(first.dataDir.adminToken, "utf8").trim()
      const headers = { authorization: `Bearer ${token}` }
      const page = (await (await fetch(`${first.url}/api/workspaces?limit=1`, { headers })).json()) as {
        pageInfo: { endCursor: string }
      }

      // Nothing is pushed in this test: the registry only has to be named.
      const second = await start("pg-second", { KILN_REGISTRY: "127.0.0.1:5000" })
      expect(second.server.output()).not.toContain("First start")
      expect(second.server.output()).not.toContain(unsharedImages)
      expect(second.server.output()).toMatch(
        /The admin token was issued by another Kiln process on this database \("admin \(first start on [^)]+\)", \d{4}-/
      )
      expect(existsSync(second.dataDir.adminToken)).toBe(false)
      const workspaces = await fetch(`${second.url}/api/workspaces`, { headers })
      expect(workspaces.status).toBe(200)
      expect(await rows(workspaces)).toEqual([expect.objectContaining({ name: "Default" })])
      const after = await fetch(`${second.url}/api/workspaces?after=${page.pageInfo.endCursor}`, { headers })
      expect(after.status, await after.text()).toBe(200)
      // In the database itself, in the default schema.
      const direct = new pg.Client({ connectionString: databaseUrl.toString() })
      await direct.connect()
      const stored = await direct.query<{ n: number }>("SELECT count(*)::int AS n FROM kiln.workspaces")
      await direct.end()
      expect(stored.rows[0]!.n).toBe(1)
      for (const { server } of [first, second]) {
        server.child.kill("SIGTERM")
        await server.exited
      }
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`)
      await admin.end()
    }
  }, 120_000)
})

DockerTesting.describeDocker("e2e › examples/mount", () => {
  it("serves the host's routes and Kiln under /ci from one node:http server", async () => {
    const Mount = await import("../mount/main.ts")
    const dataDir = DataDir.at(join(scratch, "mount"))
    const mounted = await Mount.start(dataDir, { port: 0, stack: { namespace: `${namespace}-mount` } })
    try {
      expect(mounted.bootstrapped._tag).toBe("Issued")
      const health = await fetch(`${mounted.url}/health`)
      expect(await health.json()).toEqual({ status: "ok" })
      const token = readFileSync(dataDir.adminToken, "utf8").trim()
      const workspaces = await fetch(`${mounted.url}/ci/api/workspaces`, {
        headers: { authorization: `Bearer ${token}` }
      })
      expect(workspaces.status).toBe(200)
      expect(await rows(workspaces)).toEqual([expect.objectContaining({ name: "Default" })])
      expect((await fetch(`${mounted.url}/ci/api/workspaces`)).status).toBe(401)
      expect((await fetch(`${mounted.url}/api/workspaces`)).status).toBe(404)
    } finally {
      await mounted.close()
    }
  })
})

DockerTesting.describeDocker("e2e › git sources on the server's disk", () => {
  it("npm start refuses a local repository unless KILN_GIT_LOCAL_DIRS names its directory", async () => {
    const allowed = join(scratch, "allowed")
    const inside = GitServer.commit(join(allowed, "app"), { Dockerfile: "FROM busybox\n" })
    GitServer.commit(join(scratch, "outside"), { Dockerfile: "FROM busybox\n" })
    const dataDir = DataDir.at(join(scratch, "local-dirs"))
    const server = run("examples/server/main.ts", {
      KILN_DATA_DIR: dataDir.dir,
      KILN_PORT: String(await DockerTesting.freePort()),
      KILN_DOCKER_NAMESPACE: namespace,
      KILN_GIT_LOCAL_DIRS: `${join(scratch, "nowhere")}:${allowed}`
    })
    const url = (await server.printed(/Kiln is listening on (\S+)/))[1]!
    await server.printed(/npm run demo/)
    const headers = {
      authorization: `Bearer ${readFileSync(dataDir.adminToken, "utf8").trim()}`,
      "content-type": "application/json"
    }
    const [workspace] = (await rows(await fetch(`${url}/api/workspaces`, { headers }))) as Array<{
      id: string
    }>
    const app = (await (
      await fetch(`${url}/api/apps`, {
        method: "POST",
        headers,
        body: JSON.stringify({ workspaceId: workspace!.id, handle: "local", name: "Local", kind: "app" })
      })
    ).json()) as { id: string }
    const version = (source: string) =>
      fetch(`${url}/api/app-versions`, {
        method: "POST",
        headers,
        body: JSON.stringify({ appId: app.id, source: { type: "git", url: source, ref: "main" } })
      })
    const ready = await version(join(allowed, "app"))
    expect(ready.status).toBe(201)
    expect(await ready.json()).toMatchObject({ status: "ready", commitSha: inside })
    const refused = await version(join(scratch, "outside"))
    expect(refused.status).toBe(400)
    expect(((await refused.json()) as { message: string }).message).toBe(
      "payload.source.url: expected an https://, http://, ssh:// or git@host:path URL, or a local repository in a directory this server allows"
    )
    server.child.kill("SIGTERM")
    await server.exited
  }, 60_000)

  it("npm run embed builds hello-app from this checkout, which it allows by itself", async () => {
    const embed = run("examples/embed/main.ts", {
      KILN_DATA_DIR: join(scratch, "embed"),
      KILN_DOCKER_NAMESPACE: `${namespace}-embed`
    })
    const { code } = await embed.exited
    expect(code, embed.output()).toBe(0)
    expect(embed.output()).toContain(`source: git ${DataDir.root}`)
  }, 120_000)
})
