/**
 * One build seen through all three surfaces at once, at every step of its life: the same identity (the
 * prefixed id and the UUID it encodes), each surface's status from core's one mapping, and the same
 * timestamps.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { BuildState, Id } from "@kiln/core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { toAccounts, toDeploymentStatus } from "../src/internal/dialectStatus.ts"
import { byHand, call, startServer, type TestServer } from "./fixtures/server.ts"

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

describe("http › the three surfaces agree", () => {
  it("shows one build with one identity, mapped statuses and the same timestamps everywhere", async () => {
    const workspace = (await call(server, "POST", "/api/workspaces", { body: { name: "three" } })).body
    const token = await server.token("write", [workspace.id])
    const deployment = (
      await call(server, "POST", "/api/v1/deployments", {
        token,
        body: { name: "Three", subdomain: `three-${process.pid}` }
      })
    ).body
    const form = new FormData()
    form.append("archive", new Blob([new Uint8Array(tarGz())]), "a.tar.gz")
    await call(server, "POST", `/api/v1/deployments/${deployment.id}/upload`, { token, body: form })
    const deployed = (await call(server, "POST", `/api/v1/deployments/${deployment.id}/deploy`, { token }))
      .body
    const id = Id.fromUuid("bld", deployed.id)!
    const account = `/accounts/${Id.toUuid(workspace.id)}/builds/builds/${deployed.id}`

    const look = async () => {
      const canonical = (await call(server, "GET", `/api/builds/${id}`, { token })).body
      const deployments = (
        await call(server, "GET", `/api/v1/deployments/${deployment.id}/builds/${deployed.id}`, { token })
      ).body
      const accounts = (await call(server, "GET", account, { token })).body.result
      return { canonical, deployments, accounts }
    }
    const check = async (phase: BuildState.Phase, outcome: BuildState.Outcome | null) => {
      const { canonical, deployments, accounts } = await look()
      const state = { phase, outcome } as BuildState.State
      expect(canonical.id).toBe(id)
      expect(deployments.id).toBe(Id.toUuid(canonical.id))
      expect(accounts.build_uuid).toBe(Id.toUuid(canonical.id))
      expect(deployments.deployment_id).toBe(Id.toUuid(canonical.entityId))
      expect(canonical.status).toBe(BuildState.toStatus(state))
      expect(deployments.status).toBe(toDeploymentStatus(state))
      expect([accounts.status, accounts.build_outcome]).toEqual([
        toAccounts(state).status,
        toAccounts(state).buildOutcome
      ])
      expect(deployments.started_at).toBe(canonical.startedAt)
      expect(accounts.initializing_on).toBe(canonical.startedAt)
      expect(deployments.finished_at).toBe(canonical.completedAt)
      expect(accounts.stopped_on).toBe(canonical.completedAt)
      expect(accounts.created_on).toBe(canonical.createdAt)
      expect(deployments.commit_sha).toBe(canonical.commitSha)
    }

    await check("queued", null)
    const engine = await byHand(server, id)
    await check("running", null)
    await engine.log(2)
    await engine.succeed()
    await check("stopped", "success")
  })
})

describe("http › either form of id", () => {
  it("takes the UUID form of every id in the canonical API's paths and body references", async () => {
    const uuid = (id: string) => Id.toUuid(id)
    const workspace = (await call(server, "POST", "/api/workspaces", { body: { name: "uuids" } })).body
    const app = await call(server, "POST", "/api/apps", {
      body: { workspaceId: uuid(workspace.id), handle: `uuids-${process.pid}`, name: "Uuids", kind: "app" }
    })
    expect([app.status, app.body.workspaceId]).toEqual([201, workspace.id])
    const version = await call(server, "POST", "/api/app-versions", {
      body: {
        appId: uuid(app.body.id),
        source: { type: "git", url: "https://example.com/r.git", commitSha: "c".repeat(40) }
      }
    })
    expect([version.status, version.body.appId]).toEqual([201, app.body.id])
    const build = await call(server, "POST", "/api/builds", { body: { appVersionId: uuid(version.body.id) } })
    expect([build.status, build.body.appVersionId]).toEqual([201, version.body.id])
    const token = (
      await call(server, "POST", "/api/tokens", {
        body: { name: "uuids", workspaceIds: [workspace.id], role: "read" }
      })
    ).body
    for (const [path, id] of [
      [`/api/workspaces/${uuid(workspace.id)}`, workspace.id],
      [`/api/apps/${uuid(app.body.id)}`, app.body.id],
      [`/api/app-versions/${uuid(version.body.id)}`, version.body.id],
      [`/api/builds/${uuid(build.body.id)}`, build.body.id],
      [`/api/tokens/${uuid(token.id)}`, token.id]
    ] as const) {
      const got = await call(server, "GET", path)
      expect([path, got.status, got.body.id]).toEqual([path, 200, id])
    }
    const logs = await call(server, "GET", `/api/builds/${uuid(build.body.id)}/logs`)
    expect([logs.status, logs.body.data]).toEqual([200, []])
    const cancelled = await call(server, "POST", `/api/builds/${uuid(build.body.id)}/cancel`, { body: {} })
    expect(cancelled.body).toEqual({ success: true })
    // A UUID that names nothing is a 404 like any unknown id.
    const missing = await call(server, "GET", `/api/builds/${uuid(workspace.id)}`)
    expect(missing.status).toBe(404)
  })
})

/** A small .tar.gz, made with the system's tar. */
const tarGz = () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-three-"))
  writeFileSync(join(dir, "Dockerfile"), "FROM busybox\n")
  return gzipSync(execFileSync("tar", ["-c", "-C", dir, "."]))
}
