/**
 * README's "Scaling out", run as it is written: the `sh` block after `<!-- scale-out -->`, in bash, once for
 * each of three processes started together on a fresh database of the test PostgreSQL, with a registry on
 * 127.0.0.1 and the real Docker engine. Only README's example values change — the database URL, the
 * registry, each process's data directory and Docker namespace — and each process gets a port of its own
 * (README's processes have hosts of their own). Then builds go through all three, over HTTP only: uploaded
 * archives (Kiln's API and the deployments API) and git commits from a git server on 127.0.0.1, whichever
 * process claims them; an upload cut off by a SIGKILL; a cancel sent to one process for a build on another.
 */
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as PgTesting from "@kiln/adapter-postgres/testing"
import { GitServer } from "@kiln/core/testing"
import * as DockerTesting from "@kiln/runner-docker/testing"
import pg from "pg"
import { afterAll, beforeAll, expect, it } from "vitest"
import * as DataDir from "../shared/DataDir.ts"
import { sleep, until } from "./fixtures/polling.ts"
import { killAll, type Run, start } from "./fixtures/processes.ts"

const run = `${process.pid}_${Date.now().toString(36)}`
const namespace = `kiln-e2e-scaleout-${process.pid}`
const dir = mkdtempSync(join(tmpdir(), "kiln-e2e-scaleout-"))
const database = `kiln_e2e_scaleout_${run}`

const missing =
  DockerTesting.unavailable ??
  (DockerTesting.hasRegistryBinary
    ? undefined
    : "no docker-registry binary to serve a test registry (Debian package docker-registry)")

let databaseUrl = ""
let admin: pg.Client | undefined
let db: pg.Pool | undefined
let registry: DockerTesting.LocalRegistry | undefined
let git: GitServer.GitServer | undefined

beforeAll(async () => {
  if (missing !== undefined) return
  // A database of its own, so the processes start on an empty one, in README's default schema.
  admin = new pg.Client({ connectionString: PgTesting.databaseUrl() })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`)
  databaseUrl = Object.assign(new URL(PgTesting.databaseUrl()), { pathname: `/${database}` }).toString()
  db = new pg.Pool({ connectionString: databaseUrl, max: 2, options: "-c search_path=kiln" })
  registry = await DockerTesting.startRegistry()
  git = await GitServer.start(join(dir, "repositories"))
})

afterAll(async () => {
  killAll()
  await git?.close()
  registry?.stop()
  await db?.end()
  if (missing === undefined) for (const n of [1, 2, 3]) DockerTesting.removeNamespace(`${namespace}-${n}`)
  await admin?.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`)
  await admin?.end()
  rmSync(dir, { recursive: true, force: true })
})

/** README's scale-out block: the `sh` block right after the `<!-- scale-out -->` line. */
const scaleOutBlock = () => {
  const lines = readFileSync(join(DataDir.root, "README.md"), "utf8").split("\n")
  const at = lines.indexOf("<!-- scale-out -->")
  if (at === -1 || lines[at + 1] !== "```sh")
    throw new Error("README.md has no sh block after <!-- scale-out -->")
  return lines.slice(at + 2, lines.indexOf("```", at + 2)).join("\n")
}

/** README's block for the `n`th process: README's example values, each replaced by the test's. */
const scriptFor = (block: string, n: number) => {
  const values: Record<string, string> = {
    "KILN_DATABASE_URL=postgres://kiln:secret@db.internal:5432/kiln": `KILN_DATABASE_URL=${databaseUrl}`,
    "KILN_REGISTRY=registry.internal:5000": `KILN_REGISTRY=${registry!.host}`,
    "KILN_DATA_DIR=/var/lib/kiln/a": `KILN_DATA_DIR=${dataDirOf(n).dir}`,
    "KILN_DOCKER_NAMESPACE=kiln-a": `KILN_DOCKER_NAMESPACE=${namespace}-${n}`
  }
  let script = block
  for (const [readme, test] of Object.entries(values)) {
    if (!script.includes(readme)) throw new Error(`README's scale-out block no longer says ${readme}`)
    script = script.replaceAll(readme, test)
  }
  return script
}

const dataDirOf = (n: number) => DataDir.at(join(dir, `process-${n}`))

interface Server {
  readonly run: Run
  readonly url: string
  /** The engine's owner name, as claims record it. */
  readonly owner: string
  readonly dataDir: DataDir.DataDir
}

let servers: ReadonlyArray<Server> = []
let token = ""

const sql = async <R>(text: string, values: ReadonlyArray<unknown> = []) =>
  (await db!.query(text, values as Array<unknown>)).rows as Array<R>

/** A request to one process's API, with the admin token; answers the status and the JSON body. */
const call = async (
  server: Server,
  method: string,
  path: string,
  body?: unknown
): Promise<{ readonly status: number; readonly body: Record<string, unknown> }> => {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" })
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) }
}

const created = async (server: Server, path: string, body: unknown) => {
  const answer = await call(server, "POST", path, body)
  expect(answer.status, JSON.stringify(answer.body)).toBeLessThan(300)
  return answer.body
}

/** A `.tar.gz` of a Dockerfile that prints `message` at build time, plus `extra` files. */
const archive = (message: string, extra: Readonly<Record<string, string | Buffer>> = {}) => {
  const tree = mkdtempSync(join(dir, "archive-"))
  const files = {
    Dockerfile: 'FROM busybox\nCOPY message.txt /\nRUN cat /message.txt\nCMD ["cat", "/message.txt"]\n',
    "message.txt": `${message}\n`,
    ...extra
  }
  for (const [name, content] of Object.entries(files)) writeFileSync(join(tree, name), content)
  const bytes = execFileSync("tar", ["-czf", "-", "-C", tree, "."], { maxBuffer: 64 * 1024 * 1024 })
  rmSync(tree, { recursive: true, force: true })
  return bytes
}

/** The deployments API's upload: multipart, the archive in the part named `archive`. */
const multipart = (bytes: Uint8Array) => {
  const boundary = `kiln-${randomBytes(8).toString("hex")}`
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="archive"; filename="site.tar.gz"\r\n` +
      "Content-Type: application/gzip\r\n\r\n"
  )
  return {
    type: `multipart/form-data; boundary=${boundary}`,
    body: Buffer.concat([head, bytes, Buffer.from(`\r\n--${boundary}--\r\n`)])
  }
}

const upload = async (server: Server, path: string, body: Uint8Array, type: string) => {
  const response = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": type },
    body
  })
  const answer = (await response.json()) as Record<string, unknown>
  expect(response.status, JSON.stringify(answer)).toBeLessThan(300)
  return answer
}

interface StoppedBuild {
  readonly id: string
  readonly outcome: string
  readonly owner: string
  readonly error: string | null
  readonly image_tag: string | null
}

/** Waits until every build in `ids` has stopped; answers them as the database has them. */
const stopped = (ids: ReadonlyArray<string>, timeoutMs = 150_000) =>
  until(
    `${ids.length} builds to stop`,
    async () => {
      const rows = await sql<StoppedBuild & { readonly phase: string }>(
        "SELECT id, phase, outcome, owner, error, image_tag FROM builds WHERE id = ANY($1::text[])",
        [ids]
      )
      return rows.length === ids.length && rows.every((row) => row.phase === "stopped")
        ? (rows as ReadonlyArray<StoppedBuild>)
        : undefined
    },
    timeoutMs
  )

DockerTesting.describeDocker(
  "e2e › README's scale-out path: three processes on one PostgreSQL, the Docker engine and a registry",
  () => {
    it("started together on an empty database: one workspace, one admin token, written by one process", async () => {
      const block = scaleOutBlock()
      const started = await Promise.all(
        [1, 2, 3].map(async (n) => {
          const port = await DockerTesting.freePort()
          const server = start(
            "bash",
            ["-e", "-c", scriptFor(block, n)],
            { KILN_PORT: String(port) },
            { detached: true }
          )
          const url = (await server.printed(/Kiln is listening on (\S+)/, 60_000))[1]!
          await server.printed(/npm run demo/)
          const owner = (await server.printed(/engine (\S+) started/))[1]!
          return { run: server, url, owner, dataDir: dataDirOf(n) }
        })
      )
      servers = started
      expect(await sql("SELECT name FROM workspaces")).toEqual([{ name: "Default" }])
      const tokens = await sql<{ name: string; role: string }>("SELECT name, role FROM api_tokens")
      expect(tokens).toEqual([
        { name: expect.stringMatching(/^admin \(first start on .+\)$/), role: "admin" }
      ])
      const issuers = started.filter((server) => existsSync(server.dataDir.adminToken))
      expect(issuers).toHaveLength(1)
      const issuer = issuers[0]!
      for (const server of started) {
        const output = server.run.output()
        // Every process pushes to the registry README names: none warns that its images stay local.
        expect(output).not.toContain("KILN_DATABASE_URL without KILN_REGISTRY")
        if (server === issuer) expect(output).toContain(`First start: created the workspace "Default"`)
        else {
          expect(output).not.toContain("First start")
          expect(output).toContain(
            `The admin token was issued by another Kiln process on this database ("${tokens[0]!.name}"`
          )
        }
      }
      token = readFileSync(issuer.dataDir.adminToken, "utf8").trim()
      // One cursor key: a page cursor from one process continues on another.
      const [a, b] = started
      const first = await call(a!, "GET", "/api/workspaces?limit=1")
      const after = await call(
        b!,
        "GET",
        `/api/workspaces?after=${(first.body.pageInfo as { endCursor: string }).endCursor}`
      )
      expect(after.status, JSON.stringify(after.body)).toBe(200)
      console.log(`scale-out: 3 processes started together; ${issuer.owner} issued the admin token`)
    }, 90_000)

    it("builds 20 uploaded archives and 5 git commits, whichever process claims them, into images in the registry", async () => {
      const at = (i: number) => servers[i % servers.length]!
      const [workspace] = (await call(at(0), "GET", "/api/workspaces")).body.data as Array<{ id: string }>
      const site = await created(at(0), "/api/apps", {
        workspaceId: workspace!.id,
        handle: "site",
        name: "Site",
        kind: "app"
      })
      const repo = await created(at(1), "/api/apps", {
        workspaceId: workspace!.id,
        handle: "repo",
        name: "Repo",
        kind: "app"
      })
      const docs = await created(at(2), "/api/v1/deployments", {
        name: "Docs",
        subdomain: "docs",
        workspace_id: workspace!.id
      })
      const started = Date.now()
      /** Each archive build, with the process that took its upload. */
      const archives: Array<{ readonly id: string; readonly uploader: Server }> = []
      for (let i = 0; i < 10; i++) {
        // Kiln's API: the version through one process, its upload through the same, the build through the next.
        const version = await created(at(i), "/api/app-versions", {
          appId: site.id,
          source: { type: "archive" }
        })
        const ready = await upload(
          at(i),
          `/api/app-versions/${version.id}/archive`,
          archive(`site ${i} of ${run}`),
          "application/gzip"
        )
        expect(ready.status).toBe("ready")
        const build = await created(at(i + 1), "/api/builds", { appVersionId: version.id })
        archives.push({ id: build.id as string, uploader: at(i) })
      }
      const deployed: Array<string> = []
      for (let i = 0; i < 10; i++) {
        // The deployments API: the upload through one process, the deploy (of the newest upload) through another.
        const { type, body } = multipart(archive(`docs ${i} of ${run}`))
        expect(await upload(at(i), `/api/v1/deployments/${docs.id}/upload`, body, type)).toMatchObject({
          status: "uploaded"
        })
        const build = await created(at(i + 2), `/api/v1/deployments/${docs.id}/deploy`, undefined)
        const canonical = await call(at(i), "GET", `/api/builds/${build.id}`)
        archives.push({ id: canonical.body.id as string, uploader: at(i) })
        deployed.push(build.id as string)
      }
      const commits: Array<string> = []
      for (let i = 0; i < 5; i++) {
        const sha = GitServer.commit(join(dir, "repositories", "repo"), {
          Dockerfile: "FROM busybox\nCOPY message.txt /\nRUN cat /message.txt\n",
          "message.txt": `commit ${i} of ${run}\n`
        })
        const version = await created(at(i), "/api/app-versions", {
          appId: repo.id,
          source: { type: "git", url: `${git!.url}/repo`, ref: sha }
        })
        expect(version).toMatchObject({ status: "ready", commitSha: sha })
        commits.push((await created(at(i + 1), "/api/builds", { appVersionId: version.id })).id as string)
      }

      const builds = await stopped([...archives.map((build) => build.id), ...commits])
      const seconds = (Date.now() - started) / 1000
      const failed = builds.filter((build) => build.outcome !== "success")
      const ownerOf = new Map(builds.map((build) => [build.id, build.owner]))
      const elsewhere = archives.filter(({ id, uploader }) => ownerOf.get(id) !== uploader.owner)
      const perProcess = servers.map(
        (server) => builds.filter((build) => build.owner === server.owner).length
      )
      console.log(
        `scale-out: 25 builds in ${seconds.toFixed(1)} s, per process ${perProcess.join("/")}; ` +
          `${elsewhere.length} of 20 archive builds claimed by a process that did not take the upload; ` +
          `${failed.length} failed`
      )
      expect(
        failed.map((build) => `${build.id} on ${build.owner}: ${build.outcome}, ${build.error}`)
      ).toEqual([])
      expect(perProcess.filter((count) => count > 0).length).toBeGreaterThan(1)
      // The path the issue saw fail: a build of an upload another process took.
      expect(elsewhere.length).toBeGreaterThan(0)

      // Every image is in the registry, by the tag the build answers, so any host can pull it.
      const tagged = async (repository: string) =>
        (
          (await (await fetch(`http://${registry!.host}/v2/${repository}/tags/list`)).json()) as {
            tags: Array<string>
          }
        ).tags
      const pushed = [
        ...(await tagged("site")).map((tag) => `${registry!.host}/site:${tag}`),
        ...(await tagged("docs")).map((tag) => `${registry!.host}/docs:${tag}`),
        ...(await tagged("repo")).map((tag) => `${registry!.host}/repo:${tag}`)
      ]
      for (const build of builds) expect(pushed).toContain(build.image_tag)
      for (const id of deployed) {
        const build = await call(at(1), "GET", `/api/v1/deployments/${docs.id}/builds/${id}`)
        expect(build.body).toMatchObject({
          status: "success",
          image_tag: expect.stringMatching(`^${registry!.host}/docs:`)
        })
      }
    }, 180_000)

    it("a process killed during an upload leaves nothing a build can read: the version stays pending", async () => {
      const [survivor, other, victim] = servers as [Server, Server, Server]
      const [workspace] = (await call(survivor, "GET", "/api/workspaces")).body.data as Array<{ id: string }>
      const app = await created(survivor, "/api/apps", {
        workspaceId: workspace!.id,
        handle: "cut",
        name: "Cut",
        kind: "app"
      })
      const cut = await created(survivor, "/api/v1/deployments", {
        name: "Cut off",
        subdomain: "cut-off",
        workspace_id: workspace!.id
      })
      const version = await created(survivor, "/api/app-versions", {
        appId: app.id,
        source: { type: "archive" }
      })
      // Random bytes do not compress: 8 MB stays 8 MB, of which the victim gets the first 2 MB only.
      const bytes = archive(`cut ${run}`, { "noise.bin": randomBytes(8 * 1024 * 1024) })
      const { type, body } = multipart(bytes)
      const partial = (data: Uint8Array, contentType: string, path: string) =>
        fetch(`${victim.url}${path}`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": contentType },
          body: new ReadableStream({
            start: (controller) => controller.enqueue(data.subarray(0, 2 * 1024 * 1024))
          }),
          duplex: "half"
        } as RequestInit).then(
          (response) => `answered ${response.status}`,
          () => "cut off"
        )
      const uploads = [
        partial(bytes, "application/gzip", `/api/app-versions/${version.id}/archive`),
        partial(body, type, `/api/v1/deployments/${cut.id}/upload`)
      ]
      await sleep(1_000)
      process.kill(-victim.run.child.pid!, "SIGKILL")
      await victim.run.exited
      expect(await Promise.all(uploads)).toEqual(["cut off", "cut off"])
      servers = [survivor, other]

      expect((await call(other, "GET", `/api/app-versions/${version.id}`)).body).toMatchObject({
        status: "pending"
      })
      const refused = await call(other, "POST", "/api/builds", { appVersionId: version.id })
      expect(refused.status).toBe(409)
      expect(await call(survivor, "POST", `/api/v1/deployments/${cut.id}/deploy`)).toMatchObject({
        status: 409,
        body: { message: "nothing to deploy yet: upload an archive first" }
      })
      // The same bytes again, whole, through another process: stored anew and built, whoever claims it.
      expect(
        await upload(other, `/api/app-versions/${version.id}/archive`, bytes, "application/gzip")
      ).toMatchObject({
        status: "ready"
      })
      const build = await created(survivor, "/api/builds", { appVersionId: version.id })
      const [done] = await stopped([build.id as string], 90_000)
      expect(done, JSON.stringify(done)).toMatchObject({ outcome: "success" })
    }, 120_000)

    it("a cancel sent to one process stops the build another process runs", async () => {
      const [workspace] = (await call(servers[0]!, "GET", "/api/workspaces")).body.data as Array<{
        id: string
      }>
      const app = await created(servers[0]!, "/api/apps", {
        workspaceId: workspace!.id,
        handle: "sleeper",
        name: "Sleeper",
        kind: "app",
        build: { strategy: "commands", buildCommand: "echo started; sleep 120" }
      })
      const version = await created(servers[0]!, "/api/app-versions", {
        appId: app.id,
        source: { type: "archive" }
      })
      await upload(
        servers[0]!,
        `/api/app-versions/${version.id}/archive`,
        archive(`sleeper ${run}`),
        "application/gzip"
      )
      const build = await created(servers[1]!, "/api/builds", { appVersionId: version.id })
      const id = build.id as string
      const owner = await until("the build to start sleeping", async () => {
        const [row] = await sql<{ owner: string }>(
          "SELECT b.owner FROM builds b JOIN log_lines l ON l.build_id = b.id WHERE b.id = $1 AND l.text = 'started'",
          [id]
        )
        return row?.owner
      })
      const runner = servers.find((server) => server.owner === owner)!
      const canceller = servers.find((server) => server !== runner)!
      const asked = Date.now()
      expect(await call(canceller, "POST", `/api/builds/${id}/cancel`, { reason: "stop it" })).toMatchObject({
        status: 200
      })
      const [done] = await stopped([id], 30_000)
      const stoppedIn = Date.now() - asked
      expect(done).toMatchObject({ outcome: "cancelled", owner: runner.owner })
      expect(DockerTesting.dockerLines("ps", "-aq", "--filter", `label=dev.kiln.build-id=${id}`)).toEqual([])
      console.log(
        `scale-out: a cancel sent to ${canceller.owner} stopped the build on ${runner.owner} in ${stoppedIn} ms`
      )
    }, 60_000)
  },
  missing
)
