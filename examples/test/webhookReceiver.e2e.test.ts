/**
 * README's webhook receiver, run as README says: `npm start`'s server with `KILN_WEBHOOK_ALLOW_PRIVATE=1`,
 * an endpoint on this machine made through the API, and `npm run webhook-receiver` with its secret. Kiln
 * sends a ping; the receiver verifies it and prints it. After a rotation the receiver still holding the
 * old secret verifies deliveries while the old secret signs beside the new one.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as DockerTesting from "@kiln/runner-docker/testing"
import { afterAll, expect, it } from "vitest"
import * as DataDir from "../shared/DataDir.ts"
import { killAll, run, start } from "./fixtures/processes.ts"

const namespace = `kiln-e2e-webhooks-${process.pid}`
const scratch = mkdtempSync(join(tmpdir(), "kiln-e2e-webhooks-"))
afterAll(() => {
  killAll()
  if (DockerTesting.unavailable === undefined) DockerTesting.removeNamespace(namespace)
  rmSync(scratch, { recursive: true, force: true })
})

DockerTesting.describeDocker("e2e › examples/webhook-receiver", () => {
  it("verifies and prints what npm start's server sends it, with the old secret too while a rotation lasts", async () => {
    const dataDir = DataDir.at(join(scratch, "server"))
    const server = run("examples/server/main.ts", {
      KILN_DATA_DIR: dataDir.dir,
      KILN_PORT: String(await DockerTesting.freePort()),
      KILN_DOCKER_NAMESPACE: namespace,
      KILN_WEBHOOK_ALLOW_PRIVATE: "1"
    })
    const url = (await server.printed(/Kiln is listening on (\S+)/))[1]!
    await server.printed(/npm run demo/)
    const token = readFileSync(dataDir.adminToken, "utf8").trim()
    const api = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${url}/api${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) })
      })
      // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
      return { status: response.status, body: (await response.json()) as any }
    }
    const workspace = (await api("GET", "/workspaces?limit=1")).body.data[0] as { id: string }
    const port = await DockerTesting.freePort()
    const created = await api("POST", "/webhooks", {
      workspaceId: workspace.id,
      url: `http://127.0.0.1:${port}/`
    })
    expect(created.status).toBe(201)
    const { id, secret } = created.body as { id: string; secret: string }
    const receiver = start("npm", ["run", "webhook-receiver"], { WEBHOOK_SECRET: secret, PORT: String(port) })
    await receiver.printed(/Receiving webhooks on/)

    expect((await api("POST", `/webhooks/${id}/ping`)).status).toBe(202)
    await receiver.printed(/Z ping\n/)
    // A new secret: the old one still signs beside it, so the receiver that holds it goes on verifying.
    const rotated = await api("POST", `/webhooks/${id}/rotate-secret`, { previousValidForSeconds: 600 })
    expect(rotated.body.secret).not.toBe(secret)
    await api("POST", `/webhooks/${id}/ping`)
    await receiver.printed(/Z ping\n[\s\S]*Z ping\n/)
    expect(receiver.output()).not.toContain("refused")
    // Recorded once the receiver's answer is in: both delivered, with its 204.
    const recorded = async () =>
      (
        (await api("GET", `/webhooks/${id}/deliveries`)).body.data as Array<{
          status: string
          lastStatusCode: number
        }>
      )
        .map((d) => `${d.status} ${d.lastStatusCode}`)
        .join(", ")
    const deadline = Date.now() + 10_000
    while ((await recorded()) !== "delivered 204, delivered 204" && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(await recorded()).toBe("delivered 204, delivered 204")
  }, 120_000)
})
