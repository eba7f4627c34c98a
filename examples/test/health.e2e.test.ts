/**
 * `npm start`'s probes as an orchestrator sees them: `/healthz` answers while the process runs, and
 * `/readyz` names what does not answer — PostgreSQL, then the Docker engine, each cut off behind a proxy —
 * and is ready again once it does. Neither asks for a token.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as PgTesting from "@kiln/adapter-postgres/testing"
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

const probe = async (url: string): Promise<Answer> => {
  const response = await fetch(url)
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
