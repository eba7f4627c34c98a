/**
 * `/api/builds` over real HTTP: create (idempotent), get with steps, the list contract with its
 * shorthands, cancel, and log pages. No engine runs here: a build's life is played through storage.
 */
import { ApiError } from "@kiln/http"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  byHand,
  call,
  readyVersion,
  startServer,
  type TestServer,
  workspaceWithApp
} from "./fixtures/server.ts"

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

const setup = async () => {
  const { workspace, app } = await workspaceWithApp(server)
  const version = await readyVersion(server, app.id)
  return { workspace, app, version }
}

const createBuild = async (appVersionId: string, headers: Record<string, string> = {}, metadata?: unknown) =>
  call(server, "POST", "/api/builds", {
    body: metadata === undefined ? { appVersionId } : { appVersionId, metadata },
    headers
  })

describe("http › builds › create and get", () => {
  it("creates a build (201) that shows what clients need and none of the claim's internals", async () => {
    const { workspace, app, version } = await setup()
    const created = await createBuild(version.id, {}, { pr: 42 })
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({
      workspaceId: workspace.id,
      entityId: app.id,
      appVersionId: version.id,
      sequenceNumber: 1,
      status: "pending",
      trigger: "manual",
      createdBy: "admin test token",
      metadata: { pr: 42 },
      error: null,
      startedAt: null,
      completedAt: null
    })
    expect(created.body.id).toMatch(/^bld_/)
    for (const hidden of ["owner", "attempt", "leaseExpiresAt", "idempotencyKey", "phase"]) {
      expect(created.body).not.toHaveProperty(hidden)
    }
    const got = await call(server, "GET", `/api/builds/${created.body.id}`)
    expect(got.status).toBe(200)
    expect(got.body).toEqual({ ...created.body, steps: [] })
    expect((await createBuild(version.id)).body.sequenceNumber).toBe(2)
  })

  it("returns the same build for a retried Idempotency-Key, and 409 for the key on another version", async () => {
    const { app, version } = await setup()
    const key = { "idempotency-key": `retry-${Math.random()}` }
    const first = await createBuild(version.id, key)
    const again = await createBuild(version.id, key)
    expect(again.body.id).toBe(first.body.id)
    const listed = await call(server, "GET", `/api/builds?app_id=${app.id}`)
    expect(listed.body.pageInfo.total).toBe(1)
    const other = await readyVersion(server, app.id)
    const conflict = await createBuild(other.id, key)
    expect(conflict.status).toBe(409)
    expect(conflict.body.error).toBe("conflict")
  })

  it("refuses a version that is not ready (409), an unknown version (404) and a read token (403)", async () => {
    const { workspace, app } = await setup()
    const pending = await call(server, "POST", "/api/app-versions", {
      body: { appId: app.id, source: { type: "archive" } }
    })
    const notReady = await createBuild(pending.body.id)
    expect(notReady.status).toBe(409)
    const unknown = await createBuild("ver_01jxxxxxxxxxxxxxxxxxxxxxxx")
    expect(unknown.status).toBe(404)
    const reader = await server.token("read", [workspace.id] as never)
    const refused = await call(server, "POST", "/api/builds", {
      token: reader,
      body: { appVersionId: (await readyVersion(server, app.id)).id }
    })
    expect(refused.status).toBe(403)
    expect(refused.body.error).toBe("forbidden")
  })

  it("refuses metadata nested too deep or too large (400), before it reaches storage", async () => {
    const { version } = await setup()
    // Written out as text: nesting this deep is past what JSON.stringify itself can take.
    const deep = `{"deep":${"[".repeat(5000)}1${"]".repeat(5000)}}`
    for (const metadata of [deep, JSON.stringify({ big: "x".repeat(70_000) })]) {
      const refused = await call(server, "POST", "/api/builds", {
        body: `{"appVersionId":"${version.id}","metadata":${metadata}}`,
        headers: { "content-type": "application/json" }
      })
      expect([refused.status, refused.body.error]).toEqual([400, "invalid_request"])
      expect(refused.body.message).toMatch(/^payload\.metadata: metadata (nests deeper|is larger)/)
    }
  })

  it("answers an unknown build with 404", async () => {
    const missing = await call(server, "GET", "/api/builds/bld_01jxxxxxxxxxxxxxxxxxxxxxxx")
    expect(missing.status).toBe(404)
    expect(missing.body.error).toBe("not_found")
  })
})

describe("http › builds › list", () => {
  it("narrows with every shorthand, alone and together with filter and orderBy", async () => {
    const a = await setup()
    const b = await setup()
    const ids = [
      (await createBuild(a.version.id)).body.id,
      (await createBuild(a.version.id)).body.id,
      (await createBuild(b.version.id)).body.id
    ]
    await call(server, "POST", `/api/builds/${ids[1]}/cancel`, { body: {} })
    const query = async (params: string) => {
      const reply = await call(server, "GET", `/api/builds?${params}`)
      expect(reply.status, reply.text).toBe(200)
      return reply.body.data.map((build: { id: string }) => build.id)
    }
    expect(await query(`workspace_id=${a.workspace.id}`)).toEqual([ids[1], ids[0]])
    expect(await query(`app_id=${a.app.id}`)).toEqual([ids[1], ids[0]])
    expect(await query(`entity_id=${b.app.id}`)).toEqual([ids[2]])
    expect(await query(`app_id=${a.app.id}&status=cancelled`)).toEqual([ids[1]])
    expect(await query(`app_id=${a.app.id}&status=pending`)).toEqual([ids[0]])
    expect(
      await query(`ids=${ids.join(",")}&trigger=manual&created_by=${encodeURIComponent("admin test token")}`)
    ).toEqual([ids[2], ids[1], ids[0]])
    const filter = encodeURIComponent(
      JSON.stringify({ or: [{ status: { eq: "cancelled" } }, { entityId: { eq: b.app.id } }] })
    )
    const orderBy = encodeURIComponent(JSON.stringify([{ createdAt: "asc" }]))
    expect(await query(`ids=${ids.join(",")}&filter=${filter}&orderBy=${orderBy}`)).toEqual([ids[1], ids[2]])
  })

  it("pages forward and back with signed cursors, with exact page information", async () => {
    const { app, version } = await setup()
    const ids: Array<string> = []
    for (let i = 0; i < 5; i++) ids.push((await createBuild(version.id)).body.id)
    const newest = [...ids].reverse()
    const first = await call(server, "GET", `/api/builds?app_id=${app.id}&limit=2`)
    expect(first.body.data.map((b: { id: string }) => b.id)).toEqual(newest.slice(0, 2))
    expect(first.body.pageInfo).toMatchObject({ total: 5, hasNextPage: true, hasPreviousPage: false })
    const second = await call(
      server,
      "GET",
      `/api/builds?app_id=${app.id}&limit=2&after=${first.body.pageInfo.endCursor}`
    )
    expect(second.body.data.map((b: { id: string }) => b.id)).toEqual(newest.slice(2, 4))
    expect(second.body.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: true })
    const back = await call(
      server,
      "GET",
      `/api/builds?app_id=${app.id}&limit=2&before=${second.body.pageInfo.startCursor}`
    )
    expect(back.body.data.map((b: { id: string }) => b.id)).toEqual(newest.slice(0, 2))
  })

  it("answers null cursors on an empty page, as the reference says, and pages on with the cursor asked with", async () => {
    const { app, version } = await setup()
    const none = await call(server, "GET", `/api/builds?app_id=${app.id}`)
    expect(none.body).toEqual({
      data: [],
      pageInfo: { total: 0, hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null }
    })
    const id = (await createBuild(version.id)).body.id
    const page = await call(server, "GET", `/api/builds?app_id=${app.id}&limit=1`)
    expect(page.body.pageInfo.endCursor).toEqual(expect.any(String))
    const after = `/api/builds?app_id=${app.id}&limit=1&after=${page.body.pageInfo.endCursor}`
    const past = await call(server, "GET", after)
    expect(past.body).toEqual({
      data: [],
      pageInfo: { total: 1, hasNextPage: false, hasPreviousPage: true, startCursor: null, endCursor: null }
    })
    // Rows past the end show up later after that same cursor (oldest first here, so new rows come last).
    const ascending = encodeURIComponent(JSON.stringify([{ createdAt: "asc" }]))
    const oldest = await call(server, "GET", `/api/builds?app_id=${app.id}&orderBy=${ascending}`)
    const end = `/api/builds?app_id=${app.id}&orderBy=${ascending}&after=${oldest.body.pageInfo.endCursor}`
    expect((await call(server, "GET", end)).body.data).toEqual([])
    const next = (await createBuild(version.id)).body.id
    expect((await call(server, "GET", end)).body.data.map((b: { id: string }) => b.id)).toEqual([next])
    expect(oldest.body.data.map((b: { id: string }) => b.id)).toEqual([id])
    // The reference says so where a client reads the type.
    const document = (await call(server, "GET", "/api/openapi.json")).body
    const pageInfo =
      document.paths["/api/builds"].get.responses["200"].content["application/json"].schema.properties
        .pageInfo
    for (const key of ["startCursor", "endCursor"]) {
      expect(pageInfo.properties[key].anyOf).toEqual([{ type: "string" }, { type: "null" }])
      expect(pageInfo.properties[key].description).toContain("null on an empty page")
    }
  })

  it("answers bad parameters with 400 and the parameter's code", async () => {
    const { app } = await setup()
    const cases: Array<[string, string]> = [
      ["filter=%7Bnope", "invalid_filter"],
      [`filter=${encodeURIComponent(JSON.stringify({ colour: { eq: "red" } }))}`, "invalid_filter"],
      [`orderBy=${encodeURIComponent(JSON.stringify([{ createdAt: "sideways" }]))}`, "invalid_order_by"],
      ["limit=0", "invalid_parameter"],
      ["limit=101", "invalid_parameter"],
      ["status=exploded", "invalid_parameter"],
      ["after=bm90LWEtY3Vyc29y", "invalid_cursor"],
      ["after=x&before=y", "invalid_parameter"]
    ]
    for (const [params, code] of cases) {
      const reply = await call(server, "GET", `/api/builds?app_id=${app.id}&${params}`)
      expect([params, reply.status, reply.body.error]).toEqual([params, 400, code])
      expect(reply.body.message).toEqual(expect.any(String))
    }
    // A cursor is bound to its ordering: reused under another, it is refused rather than misread.
    const page = await call(server, "GET", "/api/builds?limit=1")
    const orderBy = encodeURIComponent(JSON.stringify([{ sequenceNumber: "asc" }]))
    const reused = await call(
      server,
      "GET",
      `/api/builds?after=${page.body.pageInfo.endCursor}&orderBy=${orderBy}`
    )
    expect(reused.status).toBe(400)
    expect(reused.body.error).toBe("invalid_cursor")
  })
})

describe("http › builds › cancel", () => {
  it("cancels a queued build, then answers success: false with the reason, with or without a body", async () => {
    const { version } = await setup()
    const build = (await createBuild(version.id)).body
    const cancelled = await call(server, "POST", `/api/builds/${build.id}/cancel`, {
      body: { reason: "not needed" }
    })
    expect(cancelled.status).toBe(200)
    expect(cancelled.body).toEqual({ success: true })
    const got = (await call(server, "GET", `/api/builds/${build.id}`)).body
    expect(got).toMatchObject({ status: "cancelled", cancelReason: "not needed" })
    const again = await call(server, "POST", `/api/builds/${build.id}/cancel`)
    expect(again.status).toBe(200)
    expect(again.body).toEqual({
      success: false,
      message: `build ${build.id} has already stopped (cancelled): there is nothing to cancel`
    })
  })

  it("says why a finished build cannot be cancelled", async () => {
    const { version } = await setup()
    const build = (await createBuild(version.id)).body
    await (await byHand(server, build.id)).succeed()
    const refused = await call(server, "POST", `/api/builds/${build.id}/cancel`, { body: {} })
    expect([refused.status, refused.body]).toEqual([
      200,
      {
        success: false,
        message: `build ${build.id} has already stopped (completed): there is nothing to cancel`
      }
    ])
  })

  it("records the request on a running build for its engine", async () => {
    const { version } = await setup()
    const build = (await createBuild(version.id)).body
    await byHand(server, build.id)
    expect((await call(server, "POST", `/api/builds/${build.id}/cancel`, { body: {} })).body).toEqual({
      success: true
    })
    const got = (await call(server, "GET", `/api/builds/${build.id}`)).body
    expect(got.status).toBe("running")
    expect(got.cancelRequestedAt).toEqual(expect.any(String))
  })

  it("refuses a read token (403) and an unknown build (404)", async () => {
    const { workspace, version } = await setup()
    const build = (await createBuild(version.id)).body
    const reader = await server.token("read", [workspace.id] as never)
    expect(
      (await call(server, "POST", `/api/builds/${build.id}/cancel`, { token: reader, body: {} })).status
    ).toBe(403)
    expect(
      (await call(server, "POST", "/api/builds/bld_01jxxxxxxxxxxxxxxxxxxxxxxx/cancel", { body: {} })).status
    ).toBe(404)
  })
})

describe("http › builds › logs", () => {
  it("pages a log with cursors until it is complete, and serves it as plain text", async () => {
    const { version } = await setup()
    const build = (await createBuild(version.id)).body
    const engine = await byHand(server, build.id)
    await engine.log(1500)
    const first = await call(server, "GET", `/api/builds/${build.id}/logs`)
    expect(first.status).toBe(200)
    expect(first.body.data).toHaveLength(1000)
    expect(first.body.data[0]).toEqual({
      seq: 1,
      ts: expect.any(String),
      stream: "stdout",
      step: null,
      text: "line 1"
    })
    expect(first.body).toMatchObject({ truncated: false, complete: false })
    const second = await call(
      server,
      "GET",
      `/api/builds/${build.id}/logs?cursor=${first.body.cursor}&limit=1000`
    )
    expect(second.body.data.map((line: { seq: number }) => line.seq)).toEqual(
      Array.from({ length: 500 }, (_, i) => 1001 + i)
    )
    expect(second.body.complete).toBe(false)
    await engine.log(10)
    await engine.succeed()
    const third = await call(server, "GET", `/api/builds/${build.id}/logs?cursor=${second.body.cursor}`)
    expect(third.body.data.map((line: { text: string }) => line.text)).toEqual(
      Array.from({ length: 10 }, (_, i) => `line ${1501 + i}`)
    )
    expect(third.body.complete).toBe(true)
    const end = await call(server, "GET", `/api/builds/${build.id}/logs?cursor=${third.body.cursor}`)
    expect(end.body).toMatchObject({ data: [], cursor: third.body.cursor, complete: true })
    const text = await call(server, "GET", `/api/builds/${build.id}/logs?format=text&limit=3`)
    expect(text.headers.get("content-type")).toMatch(/^text\/plain/)
    expect(text.text).toBe("line 1\nline 2\nline 3\n")
  })

  it("serves a log longer than a page limit as text: all of it, or what follows a cursor, in order", async () => {
    const { version } = await setup()
    const build = (await createBuild(version.id)).body
    const engine = await byHand(server, build.id)
    await engine.log(25_000)
    const lines = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}\n`).join("")
    const all = await call(server, "GET", `/api/builds/${build.id}/logs?format=text`)
    expect(all.status).toBe(200)
    expect(all.text).toBe(lines(1, 25_000))
    const page = await call(server, "GET", `/api/builds/${build.id}/logs?limit=10000`)
    const rest = await call(
      server,
      "GET",
      `/api/builds/${build.id}/logs?format=text&cursor=${page.body.cursor}`
    )
    expect(rest.text).toBe(lines(10_001, 25_000))
    const some = await call(
      server,
      "GET",
      `/api/builds/${build.id}/logs?format=text&cursor=${page.body.cursor}&limit=1500`
    )
    expect(some.text).toBe(lines(10_001, 11_500))
    expect(
      (await call(server, "GET", "/api/builds/bld_01jz0000000000000000000000/logs?format=text")).status
    ).toBe(404)
  })

  it("refuses a bad cursor or limit (400) and an unknown build (404)", async () => {
    const { version } = await setup()
    const build = (await createBuild(version.id)).body
    for (const [params, code] of [
      ["cursor=nope!", "invalid_cursor"],
      ["cursor=bG9nOi0x", "invalid_cursor"],
      ["limit=0", "invalid_parameter"],
      ["limit=10001", "invalid_parameter"],
      ["format=xml", "invalid_request"]
    ]) {
      const reply = await call(server, "GET", `/api/builds/${build.id}/logs?${params}`)
      expect([params, reply.status, reply.body.error]).toEqual([params, 400, code])
    }
    expect((await call(server, "GET", "/api/builds/bld_01jxxxxxxxxxxxxxxxxxxxxxxx/logs")).status).toBe(404)
  })
})

describe("http › typed client", () => {
  it("calls every builds endpoint with decoded results, and fails with the API's typed errors", async () => {
    const { workspace, app, version } = await setup()
    const client = await server.client(server.admin)
    const outcome = await Effect.runPromise(
      Effect.gen(function* () {
        const build = yield* client.builds.create({
          payload: { appVersionId: version.id, metadata: { from: "client" } },
          headers: { "idempotency-key": "typed-client" }
        })
        const again = yield* client.builds.create({
          payload: { appVersionId: version.id },
          headers: { "idempotency-key": "typed-client" }
        })
        const got = yield* client.builds.get({ params: { id: build.id } })
        const page = yield* client.builds.list({ query: { app_id: app.id, workspace_id: workspace.id } })
        const cancelled = yield* client.builds.cancel({ params: { id: build.id }, payload: null })
        const logs = yield* client.builds.logs({ params: { id: build.id }, query: {} })
        const missing = yield* Effect.flip(
          client.builds.get({ params: { id: "bld_01jz0000000000000000000000" } })
        )
        const invalid = yield* Effect.flip(client.builds.list({ query: { filter: "{" } }))
        return { build, again, got, page, cancelled, logs, missing, invalid }
      })
    )
    expect(outcome.build.metadata).toEqual({ from: "client" })
    expect(outcome.again.id).toBe(outcome.build.id)
    expect(outcome.got.steps).toEqual([])
    expect(outcome.page.data.map((b) => b.id)).toEqual([outcome.build.id])
    expect(outcome.cancelled).toEqual({ success: true })
    expect(outcome.logs).toMatchObject({ data: [], complete: true })
    expect(outcome.missing).toBeInstanceOf(ApiError.NotFound)
    expect(outcome.invalid).toBeInstanceOf(ApiError.BadRequest)
    expect(outcome.invalid).toMatchObject({ error: "invalid_filter" })
    const unauthorized = await server.client("kiln_pat_wrong")
    const refused = await Effect.runPromise(Effect.flip(unauthorized.builds.list({ query: {} })))
    expect(refused).toBeInstanceOf(ApiError.Unauthorized)
  })
})

describe("http › builds › redeploy", () => {
  it("rebuilds the same app version as a new build, whatever became of the first", async () => {
    const { version } = await setup()
    const first = (await createBuild(version.id, {}, { pr: 7 })).body
    await call(server, "POST", `/api/builds/${first.id}/cancel`)
    const again = await call(server, "POST", `/api/builds/${first.id}/redeploy`)
    expect(again.status).toBe(201)
    expect(again.body).toMatchObject({
      appVersionId: version.id,
      trigger: "redeploy",
      status: "pending",
      sequenceNumber: first.sequenceNumber + 1,
      metadata: { pr: 7, redeployOf: first.id }
    })
    expect(again.body.id).not.toBe(first.id)
    const missing = await call(server, "POST", "/api/builds/bld_01jz0000000000000000000000/redeploy")
    expect(missing.status).toBe(404)
    const reader = await server.token("read", "*")
    expect((await call(server, "POST", `/api/builds/${first.id}/redeploy`, { token: reader })).status).toBe(
      403
    )
  })
})
