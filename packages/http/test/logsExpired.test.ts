/**
 * A build whose log retention expired is answered as expired on every surface, never as an empty log that
 * looks like a build that printed nothing: 410 on the canonical pages (JSON and text) and in the accounts
 * dialect, a 4410 close on the streams, and the deployments dialect's documented 404. A build whose log
 * was kept still answers its lines. The builds run by hand through storage, on the real server.
 */
import { Access, Id, Storage } from "@kiln/core"
import { ApiError } from "@kiln/http"
import { DateTime, Effect, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  byHand,
  call,
  readyVersion,
  startServer,
  type TestServer,
  workspaceWithApp
} from "./fixtures/server.ts"
import { openStream } from "./fixtures/websocket.ts"

let server: TestServer
/** A stopped build whose log retention expired, and one of another app whose log was kept. */
let expired: { workspace: string; app: string; build: string; expiredAt: string }
let kept: { workspace: string; app: string; build: string }

/** A build of a new app that logs three lines and succeeds. */
const finishedBuild = async () => {
  const { workspace, app } = await workspaceWithApp(server)
  const version = await readyVersion(server, app.id)
  const build: string = (await call(server, "POST", "/api/builds", { body: { appVersionId: version.id } }))
    .body.id
  const engine = await byHand(server, build)
  await engine.log(3)
  await engine.succeed()
  return { workspace: workspace.id, app: app.id, build }
}

beforeAll(async () => {
  server = await startServer()
  const doomed = await finishedBuild()
  kept = await finishedBuild()
  // A cut-off in the future: every stopped build of the app is old enough.
  const builds = await server.run(
    Effect.gen(function* () {
      const storage = yield* Storage.Storage
      return yield* storage.expireLogs({
        appId: doomed.app as Id.AppId,
        stoppedBefore: DateTime.add(yield* DateTime.now, { hours: 1 }),
        limit: 10
      })
    })
  )
  expect(builds.map((build) => build.id)).toEqual([doomed.build])
  const page = await server.run(
    Storage.Storage.use((storage) => storage.readLogs(Access.all, builds[0]!.id, 0, 10))
  )
  expect(page.lines).toEqual([])
  expect(page.expiredAt).not.toBeNull()
  expired = { ...doomed, expiredAt: DateTime.formatIso(page.expiredAt!) }
})
afterAll(() => server.close())

const gone = () => ({
  error: "logs_expired",
  message: `the log of build ${expired.build} expired on ${expired.expiredAt} under the retention policy; the build itself is kept`,
  expiredAt: expired.expiredAt
})

describe("http › expired logs", () => {
  it("answers the canonical log pages with 410 logs_expired, as JSON and as text, and keeps the build", async () => {
    const json = await call(server, "GET", `/api/builds/${expired.build}/logs`)
    expect([json.status, json.body]).toEqual([410, gone()])
    // Past the last line too: the log is gone, not caught up with.
    const after = await call(server, "GET", `/api/builds/${expired.build}/logs?limit=1`)
    expect([after.status, after.body]).toEqual([410, gone()])
    const text = await call(server, "GET", `/api/builds/${expired.build}/logs?format=text`)
    expect([text.status, text.headers.get("content-type"), text.body]).toEqual([
      410,
      "application/json",
      gone()
    ])
    const build = await call(server, "GET", `/api/builds/${expired.build}`)
    expect([build.status, build.body.status]).toEqual([200, "completed"])
  })

  it("fails the typed client's log page with ApiError.Gone", async () => {
    const client = await server.client(server.admin)
    const error = await Effect.runPromise(
      Effect.flip(client.builds.logs({ params: { id: expired.build }, query: {} }))
    )
    expect(error).toBeInstanceOf(ApiError.Gone)
    expect(error).toMatchObject({ error: "logs_expired", message: gone().message })
    expect(DateTime.formatIso((error as ApiError.Gone).expiredAt)).toBe(expired.expiredAt)
  })

  it("fails the typed client's log follower at once, without reconnecting", async () => {
    const client = await server.client(server.admin)
    const started = Date.now()
    const error = await Effect.runPromise(Effect.flip(Stream.runDrain(client.followLogs(expired.build))))
    expect(error.message).toMatch(/its log expired under the retention policy \(logs_expired\)/)
    // Five reconnects would take about 3 s of backoff.
    expect(Date.now() - started).toBeLessThan(1500)
  })

  it("closes either log stream right after the upgrade with 4410 logs_expired, sending nothing", async () => {
    for (const path of [
      `/api/builds/${expired.build}/logs/stream`,
      `/api/v1/deployments/${Id.toUuid(expired.app)}/builds/${Id.toUuid(expired.build)}/logs/stream`
    ]) {
      const outcome = await openStream(server.url, path, { token: server.admin })
      if (!("opened" in outcome)) throw new Error(outcome.refused.text)
      expect([path, await outcome.opened.closed, await outcome.opened.reason]).toEqual([
        path,
        4410,
        "logs_expired"
      ])
      expect(outcome.opened.messages).toEqual([])
    }
  })

  it("answers the accounts dialect's log with 410 in its envelope, the message starting logs_expired:", async () => {
    const reply = await call(
      server,
      "GET",
      `/accounts/${Id.toUuid(expired.workspace)}/builds/builds/${Id.toUuid(expired.build)}/logs`
    )
    expect([reply.status, reply.body]).toEqual([
      410,
      {
        success: false,
        errors: [
          {
            code: 410,
            message: `logs_expired: the log of build ${Id.toUuid(expired.build)} expired on ${expired.expiredAt} under the retention policy; the build itself is kept`
          }
        ],
        messages: [],
        result: null
      }
    ])
  })

  it("answers the deployments dialect's log with its documented 404", async () => {
    const reply = await call(
      server,
      "GET",
      `/api/v1/deployments/${Id.toUuid(expired.app)}/builds/${Id.toUuid(expired.build)}/logs`
    )
    expect([reply.status, reply.body]).toEqual([
      404,
      { error: "not_found", message: "Build logs not available" }
    ])
  })

  it("still answers a kept log's lines on every surface", async () => {
    const lines = ["line 1", "line 2", "line 3"]
    const json = await call(server, "GET", `/api/builds/${kept.build}/logs`)
    expect(json.status).toBe(200)
    expect(json.body).toMatchObject({ complete: true })
    expect(json.body.data.map((line: { text: string }) => line.text)).toEqual(lines)
    const text = await call(server, "GET", `/api/builds/${kept.build}/logs?format=text`)
    expect([text.status, text.text]).toEqual([200, "line 1\nline 2\nline 3\n"])
    const accounts = await call(
      server,
      "GET",
      `/accounts/${Id.toUuid(kept.workspace)}/builds/builds/${Id.toUuid(kept.build)}/logs`
    )
    expect(accounts.status).toBe(200)
    expect(accounts.body.result.lines.map(([, text]: [number, string]) => text)).toEqual(lines)
    const deployments = await call(
      server,
      "GET",
      `/api/v1/deployments/${Id.toUuid(kept.app)}/builds/${Id.toUuid(kept.build)}/logs`
    )
    expect([deployments.status, deployments.text]).toEqual([200, "line 1\nline 2\nline 3\n"])
    const stream = await openStream(server.url, `/api/builds/${kept.build}/logs/stream`, {
      token: server.admin
    })
    if (!("opened" in stream)) throw new Error(stream.refused.text)
    expect(await stream.opened.closed).toBe(1000)
    expect(stream.opened.messages.map((message) => message.type)).toEqual([
      "status",
      "line",
      "line",
      "line",
      "end"
    ])
  })

  it("documents the 410 on both log endpoints' OpenAPI operations", async () => {
    for (const [document, path] of [
      ["/api/openapi.json", "/api/builds/{id}/logs"],
      ["/accounts/openapi.json", "/accounts/{account_id}/builds/builds/{build_uuid}/logs"]
    ] as const) {
      // biome-ignore lint/suspicious/noExplicitAny: the document is checked by shape
      const served = (await (await fetch(`${server.url}${document}`)).json()) as any
      expect([path, Object.keys(served.paths[path].get.responses)]).toEqual([
        path,
        expect.arrayContaining(["200", "404", "410"])
      ])
    }
  })
})
