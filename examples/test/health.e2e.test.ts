/**
 * `npm start` as an operator runs it. Its probes, as an orchestrator sees them: `/healthz` answers while
 * the process runs, and `/readyz` names what does not answer — PostgreSQL, then the Docker engine, each cut
 * off behind a proxy — and is ready again once it does; neither asks for a token. Its log with
 * `KILN_LOG_FORMAT=json`: nothing but JSON lines, a request's lines naming the request, a build's the build.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as PgTesting from "@kiln/adapter-postgres/testing"
import { GitServer } from "@kiln/core/testing"
import * as DockerTesting from "@kiln/runner-docker/testing"
import pg from "pg"
import { afterAll, expect, it } from "vitest"
import * as DataDir from "../shared/DataDir.ts"
import { killAll, run } from "./fixtures/processes.ts"
import * as Proxies from "./fixtures/proxy.ts"

const namespace = `kiln-e2e-health-${process.pid}`
const scratch = mkdtempSync(join(tmpdir(), "kiln-e2e-health-"))
afterAll(() => {
  killAll()
  if (DockerTesting.unavailable === undefined) DockerTesting.removeNamespace(namespace)
  rmSync(scratch, { recursive: true, force: true })
})

interface Answer {
  readonly status: number
  readonly body: { readonly status: string; readonly checks?: Record<string, string> }
}

/** Every `x-request-id` the probes were answered with. */
const requestIds = new Set<string>()

const probe = async (url: string): Promise<Answer> => {
  const response = await fetch(url)
  requestIds.add(response.headers.get("x-request-id") ?? "")
  return { status: response.status, body: (await response.json()) as Answer["body"] }
}

/** Probes `url` until it answers `status` (an answer is kept for a second), within 15 s. */
const until = async (url: string, status: number) => {
  const deadline = Date.now() + 15_000
  while (true) {
    const answer = await probe(url)
    if (answer.status === status || Date.now() > deadline) return answer
    await new Promise((done) => setTimeout(done, 200))
  }
}

DockerTesting.describeDocker("e2e › health probes of npm start", () => {
  it("/healthz answers; /readyz names PostgreSQL, then Docker, while each is cut off, and recovers", async () => {
    const database = `kiln_e2e_health_${process.pid}`
    const admin = new pg.Client({ connectionString: PgTesting.databaseUrl() })
    await admin.connect()
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`)
    const direct = new URL(PgTesting.databaseUrl())
    const postgres = await Proxies.start("tcp", { host: direct.hostname, port: Number(direct.port) })
    const engine = process.env.DOCKER_HOST?.replace(/^unix:\/\//, "") ?? "/var/run/docker.sock"
    const docker = await Proxies.start({ path: join(scratch, "docker.sock") }, { path: engine })
    try {
      const proxied = Object.assign(new URL(direct), {
        port: String((postgres.address as { port: number }).port),
        pathname: `/${database}`
      })
      const server = run("examples/server/main.ts", {
        KILN_DATA_DIR: DataDir.at(join(scratch, "server")).dir,
        KILN_PORT: String(await DockerTesting.freePort()),
        KILN_DOCKER_NAMESPACE: namespace,
        KILN_DATABASE_URL: proxied.toString(),
        DOCKER_HOST: `unix://${join(scratch, "docker.sock")}`
      })
      const url = (await server.printed(/Kiln is listening on (\S+)/))[1]!
      await server.printed(/npm run demo/)
      // A server that died says why: its output goes with the failure.
      server.exited.then(({ code, signal }) => {
        if (signal !== "SIGKILL") console.error(`npm start exited (${code ?? signal}):\n${server.output()}`)
      })

      expect(await probe(`${url}/healthz`)).toEqual({ status: 200, body: { status: "ok" } })
      const ready = { status: 200, body: { status: "ready", checks: { storage: "ok", runner: "ok" } } }
      expect(await until(`${url}/readyz`, 200)).toEqual(ready)

      postgres.cut()
      const noStorage = await until(`${url}/readyz`, 503)
      expect(noStorage.status).toBe(503)
      expect(noStorage.body.status).toBe("unavailable")
      expect(noStorage.body.checks?.runner).toBe("ok")
      expect(["unavailable", "timed_out"]).toContain(noStorage.body.checks?.storage)
      // The process itself still answers: an orchestrator should wait, not restart it.
      expect(await probe(`${url}/healthz`)).toEqual({ status: 200, body: { status: "ok" } })
      postgres.restore()
      expect(await until(`${url}/readyz`, 200)).toEqual(ready)

      docker.cut()
      const noRunner = await until(`${url}/readyz`, 503)
      expect(noRunner.status).toBe(503)
      expect(noRunner.body.checks?.storage).toBe("ok")
      expect(["unavailable", "timed_out"]).toContain(noRunner.body.checks?.runner)
      docker.restore()
      expect(await until(`${url}/readyz`, 200)).toEqual(ready)
    } finally {
      killAll()
      await Promise.all([postgres.close(), docker.close()])
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`)
      await admin.end()
    }
  }, 120_000)
})

interface LogLine {
  /** The text, or the text and what came with it (an error). */
  readonly message: string | ReadonlyArray<unknown>
  readonly level: string
  readonly annotations: Record<string, unknown>
}

DockerTesting.describeDocker("e2e › npm start's log as JSON", () => {
  it("KILN_LOG_FORMAT=json: only JSON lines; a request's lines carry its requestId, a build's its buildId", async () => {
    const repository = join(scratch, "repositories", "app")
    GitServer.commit(repository, { Dockerfile: "FROM busybox\nRUN echo built\n" })
    const engine = process.env.DOCKER_HOST?.replace(/^unix:\/\//, "") ?? "/var/run/docker.sock"
    const docker = await Proxies.start({ path: join(scratch, "json-docker.sock") }, { path: engine })
    const dataDir = DataDir.at(join(scratch, "json"))
    try {
      const server = run("examples/server/main.ts", {
        KILN_DATA_DIR: dataDir.dir,
        KILN_PORT: String(await DockerTesting.freePort()),
        KILN_DOCKER_NAMESPACE: namespace,
        KILN_GIT_LOCAL_DIRS: join(scratch, "repositories"),
        KILN_LOG_FORMAT: "json",
        DOCKER_HOST: `unix://${join(scratch, "json-docker.sock")}`
      })
      // The banner is a log line too: its text is a JSON string, newlines escaped.
      const url = (await server.printed(/Kiln is listening on (http:\/\/[\d.:]+)/))[1]!
      await server.printed(/npm run demo/)

      // A request that logs: a readiness probe while Docker does not answer.
      docker.cut()
      requestIds.clear()
      expect((await until(`${url}/readyz`, 503)).status).toBe(503)
      docker.restore()
      expect((await until(`${url}/readyz`, 200)).status).toBe(200)

      const headers = {
        authorization: `Bearer ${readFileSync(dataDir.adminToken, "utf8").trim()}`,
        "content-type": "application/json"
      }
      const post = async (path: string, body: unknown) =>
        (await (
          await fetch(`${url}${path}`, { method: "POST", headers, body: JSON.stringify(body) })
        ).json()) as {
          id: string
        }
      const { data } = (await (await fetch(`${url}/api/workspaces`, { headers })).json()) as {
        data: Array<{ id: string }>
      }
      const app = await post("/api/apps", {
        workspaceId: data[0]!.id,
        handle: "logged",
        name: "Logged",
        kind: "app"
      })
      const version = await post("/api/app-versions", {
        appId: app.id,
        source: { type: "git", url: repository, ref: "main" }
      })
      const build = await post("/api/builds", { appVersionId: version.id })
      const deadline = Date.now() + 60_000
      let status = "pending"
      while (!["completed", "failed", "cancelled", "skipped"].includes(status) && Date.now() < deadline) {
        await new Promise((done) => setTimeout(done, 250))
        status = (
          (await (await fetch(`${url}/api/builds/${build.id}`, { headers })).json()) as { status: string }
        ).status
      }
      expect(status).toBe("completed")
      server.child.kill("SIGTERM")
      // As on Ctrl-C: runMain exits 130 once the layers have closed.
      expect((await server.exited).code).toBe(130)

      const lines = server
        .output()
        .split("\n")
        .filter((line) => line.trim() !== "")
      const notJson = lines.filter((line) => {
        try {
          JSON.parse(line)
          return false
        } catch {
          return true
        }
      })
      expect(notJson).toEqual([])
      const logged = lines.map((line) => JSON.parse(line) as LogLine)
      const text = (line: LogLine) => String(Array.isArray(line.message) ? line.message[0] : line.message)
      const probes = logged.filter((line) => text(line) === "readiness: runner did not answer")
      expect(probes.length).toBeGreaterThan(0)
      for (const line of probes) expect(requestIds).toContain(line.annotations.requestId)
      const ofBuild = logged
        .filter((line) => line.annotations.buildId === build.id)
        .map((line) => line.message)
      expect(ofBuild).toEqual(expect.arrayContaining(["build started", "build completed"]))
    } finally {
      killAll()
      await docker.close()
    }
  }, 120_000)
})
