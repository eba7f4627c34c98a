/**
 * `GET /metrics` on the real server, with the engine running builds (scripted runner) and sending
 * webhooks: the figures a scrape shows follow what happened — builds queued and running per workspace, the
 * engine's slots, builds finished by outcome with their queue waits and durations, claims, stored log
 * lines, webhook attempts by result, requests by documented route and status — and the text passes
 * `promtool check metrics` (Debian's `prometheus` package). Only the metrics token may scrape.
 */
import { execFileSync, spawnSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { Runner } from "@kiln/core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startServer, type TestServer, workspaceWithApp } from "./fixtures/server.ts"

const token = "metrics-scraper-token-0123456789"
const promtool = spawnSync("promtool", ["--version"]).status === 0
if (!promtool) {
  if (process.env.KILN_REQUIRE_PROMTOOL === "1")
    throw new Error("promtool is required (KILN_REQUIRE_PROMTOOL=1)")
  console.warn("metrics: promtool not found (apt-get install prometheus): the format check is skipped")
}

let server: TestServer
beforeAll(async () => {
  server = await startServer({
    engine: { runner: Runner.layerTest, options: { concurrency: 1, pollIntervalMs: 50 } },
    metrics: { token },
    webhookAddresses: { allowPrivate: true }
  })
})
afterAll(() => server?.close())

/** A version of an app whose builds run `command`, uploaded as an archive. */
const version = async (command: string) => {
  const { workspace, app } = await workspaceWithApp(server, { strategy: "commands", buildCommand: command })
  const dir = join(server.dir, app.id)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, "README"), "metrics\n")
  const made = await call(server, "POST", "/api/app-versions", {
    body: { appId: app.id, source: { type: "archive" } }
  })
  await call(server, "POST", `/api/app-versions/${made.body.id}/archive`, {
    body: new Uint8Array(gzipSync(execFileSync("tar", ["-c", "-C", dir, "."]))),
    headers: { "content-type": "application/gzip" }
  })
  return { workspaceId: workspace.id, versionId: made.body.id as string }
}

const build = async (versionId: string) =>
  (await call(server, "POST", "/api/builds", { body: { appVersionId: versionId } })).body.id as string

const status = async (id: string) => (await call(server, "GET", `/api/builds/${id}`)).body.status as string

const scrape = async () => {
  const response = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/)
  return response.text()
}

/** The value of the series with exactly these labels, or undefined. */
const value = (text: string, name: string, labels = "") =>
  text
    .split("\n")
    .find((line) => line.startsWith(`${name}${labels === "" ? "" : `{${labels}}`} `))
    ?.split(" ")[1]

const closedPort = () =>
  new Promise<number>((done) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => done(port))
    })
  })

describe("metrics", () => {
  it("refuses a scrape without the metrics token, an API token included", async () => {
    for (const authorization of [undefined, "Bearer wrong", `Bearer ${server.admin}`]) {
      const response = await fetch(`${server.url}/metrics`, {
        headers: authorization === undefined ? {} : { authorization }
      })
      expect(response.status).toBe(401)
    }
  })

  it("shows what the engine and the API did, in a format promtool accepts", async () => {
    const slow = await version("sleep 2")
    const first = await build(slow.versionId)
    const second = await build(slow.versionId)
    for (let waited = 0; (await status(first)) !== "running"; waited += 50) {
      if (waited > 10_000) throw new Error("the first build never ran")
      await new Promise((done) => setTimeout(done, 50))
    }
    const busy = await scrape()
    expect(value(busy, "kiln_builds_running", `workspace_id="${slow.workspaceId}"`)).toBe("1")
    expect(value(busy, "kiln_builds_queued", `workspace_id="${slow.workspaceId}"`)).toBe("1")
    expect([value(busy, "kiln_engine_slots_in_use"), value(busy, "kiln_engine_slots")]).toEqual(["1", "1"])

    const fine = await version("echo built")
    const broken = await version("exit 3")
    const port = await closedPort()
    expect(
      (
        await call(server, "POST", "/api/webhooks", {
          body: { workspaceId: fine.workspaceId, url: `http://127.0.0.1:${port}/`, types: ["build.finished"] }
        })
      ).status
    ).toBe(201)
    const ids = [first, second, await build(fine.versionId), await build(broken.versionId)]
    for (const id of ids) {
      for (let waited = 0; !["completed", "failed"].includes(await status(id)); waited += 50) {
        if (waited > 30_000) throw new Error(`build ${id} never stopped`)
        await new Promise((done) => setTimeout(done, 50))
      }
    }
    expect((await call(server, "GET", "/api/no-such-route")).status).toBe(404)
    // The attempt to the closed port is made soon after its build finished.
    let text = await scrape()
    for (
      let waited = 0;
      value(text, "kiln_webhook_delivery_attempts_total", `result="failed"`) === undefined;
      waited += 100
    ) {
      if (waited > 10_000) break
      await new Promise((done) => setTimeout(done, 100))
      text = await scrape()
    }

    expect(value(text, "kiln_builds_finished_total", `outcome="success"`)).toBe("3")
    expect(value(text, "kiln_builds_finished_total", `outcome="failure"`)).toBe("1")
    expect(value(text, "kiln_build_queue_wait_seconds_count")).toBe("4")
    expect(value(text, "kiln_build_duration_seconds_count")).toBe("4")
    // The slow builds took two seconds each: at least those two fall above the 1 s bucket.
    expect(Number(value(text, "kiln_build_duration_seconds_bucket", `le="1"`))).toBeLessThanOrEqual(2)
    expect(value(text, "kiln_builds_claimed_total")).toBe("4")
    expect(Number(value(text, "kiln_claim_duration_seconds_count"))).toBeGreaterThanOrEqual(4)
    expect(Number(value(text, "kiln_log_lines_stored_total"))).toBeGreaterThan(4)
    expect(Number(value(text, "kiln_log_bytes_stored_total"))).toBeGreaterThan(
      Number(value(text, "kiln_log_lines_stored_total"))
    )
    expect(
      Number(value(text, "kiln_webhook_delivery_attempts_total", `result="failed"`))
    ).toBeGreaterThanOrEqual(1)
    expect(value(text, "kiln_builds_running", `workspace_id="${slow.workspaceId}"`)).toBe("0")
    expect(value(text, "kiln_builds_queued", `workspace_id="${slow.workspaceId}"`)).toBe("0")
    expect(
      Number(value(text, "kiln_http_requests_total", `route="/api/builds/{id}",method="GET",status="200"`))
    ).toBeGreaterThan(4)
    expect(value(text, "kiln_http_requests_total", `route="other",method="GET",status="404"`)).toBe("1")
    expect(value(text, "kiln_http_requests_total", `route="/api/builds",method="POST",status="201"`)).toBe(
      "4"
    )
    expect(text).toContain("kiln_process_resident_memory_bytes")

    if (promtool) {
      const checked = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" })
      expect({ status: checked.status, output: `${checked.stdout}${checked.stderr}` }).toEqual({
        status: 0,
        output: ""
      })
    }
  }, 60_000)
})
