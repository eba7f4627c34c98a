/**
 * `/healthz` and `/readyz` on the real server, without a token: what a process that only serves the API
 * checks (its storage), what one that runs builds checks too (its runner), under a host's prefix, and many
 * probes at once. PostgreSQL or Docker going away is examples/test/health.e2e.test.ts.
 */
import { Runner } from "@kiln/core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "./fixtures/server.ts"

// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
const get = async (url: string): Promise<{ status: number; cache: string | null; body: any }> => {
  const response = await fetch(url)
  return {
    status: response.status,
    cache: response.headers.get("cache-control"),
    body: await response.json()
  }
}

describe("health probes", () => {
  let api: TestServer
  let builds: TestServer
  beforeAll(async () => {
    ;[api, builds] = await Promise.all([
      startServer({ prefix: "/ci" }),
      startServer({ engine: { runner: Runner.layerTest } })
    ])
  })
  afterAll(() => Promise.all([api?.close(), builds?.close()]))

  it("/healthz answers without a token, under the host's prefix", async () => {
    expect(await get(`${api.url}/healthz`)).toEqual({
      status: 200,
      cache: "no-store",
      body: { status: "ok" }
    })
  })

  it("/readyz checks the storage of a process that only serves the API", async () => {
    expect(await get(`${api.url}/readyz`)).toEqual({
      status: 200,
      cache: "no-store",
      body: { status: "ready", checks: { storage: "ok" } }
    })
  })

  it("/readyz checks the runner too where builds run", async () => {
    expect((await get(`${builds.url}/readyz`)).body).toEqual({
      status: "ready",
      checks: { storage: "ok", runner: "ok" }
    })
  })

  it("answers 500 probes at once, each with the same readiness", async () => {
    const answers = await Promise.all(Array.from({ length: 500 }, () => get(`${builds.url}/readyz`)))
    expect(new Set(answers.map((answer) => `${answer.status} ${JSON.stringify(answer.body)}`))).toEqual(
      new Set([`200 {"status":"ready","checks":{"storage":"ok","runner":"ok"}}`])
    )
  })

  it("is documented in the OpenAPI document", async () => {
    const { body } = await get(`${api.url}/api/openapi.json`)
    expect(Object.keys(body.paths)).toEqual(expect.arrayContaining(["/healthz", "/readyz"]))
    expect(Object.keys(body.paths["/readyz"].get.responses)).toEqual(["200", "503"])
  })
})
