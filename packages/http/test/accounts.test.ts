/**
 * The accounts dialect (seed 002) against the real server: every endpoint, its fields and types, the
 * envelope on every answer (errors, auth failures and unknown routes included), triggers, manual builds,
 * log pages, and scope — another account's objects are 404s like missing ones.
 */
import { Access, App, Id, type LogLine, Secrets, Storage } from "@kiln/core"
import { AccountsApi } from "@kiln/http"
import { DateTime, Effect, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Reply, call as request, startServer, type TestServer } from "./fixtures/server.ts"

// The key secret variable values are sealed with, read by the server.
process.env.KILN_SECRETS_KEY = "a test key for sealing secret values, long enough"

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

const commit = "a".repeat(40)

/** A workspace with an app and a ready version of it, and a write token for just that workspace. */
const account = async (name: string) => {
  const { workspace, app, version } = await server.run(
    Effect.gen(function* () {
      const storage = yield* Storage.Storage
      const workspace = yield* storage.createWorkspace({ name })
      const app = yield* storage.createApp(Access.all, {
        workspaceId: workspace.id,
        handle: "worker",
        name: "Worker",
        kind: "worker",
        build: App.defaultBuildSettings
      })
      const version = yield* storage.createAppVersion(Access.all, {
        appId: app.id,
        source: { type: "git", url: "https://git.example.com/acme/worker.git", commitSha: commit }
      })
      return { workspace, app, version }
    })
  )
  const token = await server.token("write", [workspace.id])
  return {
    workspace,
    app,
    version,
    token,
    base: `${server.url}/accounts/${Id.toUuid(workspace.id)}/builds`,
    script: Id.toUuid(app.id)
  }
}

/** A request as `token`, to a full URL of this server. */
const call = (token: string, method: string, url: string, body?: unknown) =>
  request(server, method, url.slice(server.url.length), { token, body })

const isEnvelope = (body: Reply["body"], success: boolean) => {
  expect(Object.keys(body).sort()).toEqual(
    success && "result_info" in body
      ? ["errors", "messages", "result", "result_info", "success"]
      : ["errors", "messages", "result", "success"]
  )
  expect(body.success).toBe(success)
  expect(Array.isArray(body.errors)).toBe(true)
  expect(Array.isArray(body.messages)).toBe(true)
  if (!success) {
    expect(body.result).toBeNull()
    expect(body.errors).toEqual([{ code: expect.any(Number), message: expect.any(String) }])
  }
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

/** Claims this build (other tests' builds may be queued too) and answers its fence. */
const claim = (id: string) =>
  Storage.Storage.use((storage) =>
    Effect.map(storage.claimNext({ owner: "t", leaseMs: 60_000, max: 1000 }), (claimed) => {
      const build = claimed.find((b) => b.id === id)!
      return { owner: "t", attempt: build.attempt }
    })
  )

const queue = (versionId: string, n = 1) =>
  server.run(
    Effect.forEach(Array.from({ length: n }), () =>
      Storage.Storage.use((storage) =>
        storage.createBuild(Access.all, {
          appVersionId: versionId as never,
          trigger: "manual",
          createdBy: "test"
        })
      )
    )
  )

describe("http › accounts dialect", () => {
  it("creates, updates, lists and deletes triggers in the envelope, with defaults filled in", async () => {
    const a = await account("triggers")
    const created = await call(a.token, "POST", `${a.base}/triggers`, {
      external_script_id: a.script,
      trigger_name: "main",
      repository: "https://git.example.com/acme/worker.git",
      branch_includes: ["main"],
      path_excludes: ["docs/*"],
      build_command: "npm run build",
      environment_variables: {
        API_TOKEN: { is_secret: true, value: "s3cret-value" },
        MODE: { is_secret: false, value: "production" }
      }
    })
    expect(created.status).toBe(200)
    isEnvelope(created.body, true)
    const trigger = created.body.result
    expect(trigger).toEqual({
      trigger_uuid: expect.stringMatching(uuid),
      trigger_name: "main",
      external_script_id: a.script,
      repo_connection: { repo_name: "https://git.example.com/acme/worker.git" },
      branch_includes: ["main"],
      branch_excludes: [],
      path_includes: ["*"],
      path_excludes: ["docs/*"],
      build_command: "npm run build",
      deploy_command: null,
      root_directory: null,
      build_caching_enabled: false,
      environment_variables: {
        API_TOKEN: { is_secret: true, value: null },
        MODE: { is_secret: false, value: "production" }
      },
      created_on: expect.stringMatching(iso),
      modified_on: expect.stringMatching(iso),
      deleted_on: null
    })
    // The secret is stored sealed, never in the clear.
    const storedTrigger = await server.run(
      Storage.Storage.use((storage) =>
        storage.getTrigger(Access.all, Id.fromUuid("trg", trigger.trigger_uuid)!)
      )
    )
    const secret = storedTrigger.environment.find((v) => v.name === "API_TOKEN")!
    expect(secret.value).toMatch(/^sealed:v1:/)
    expect(JSON.stringify(storedTrigger)).not.toContain("s3cret-value")
    expect(Secrets.open(Secrets.SecretsKey.defaultValue().key!, secret.value!)).toBe("s3cret-value")
    const updated = await call(a.token, "PATCH", `${a.base}/triggers/${trigger.trigger_uuid}`, {
      build_caching_enabled: true,
      branch_excludes: ["wip/*"],
      // A secret given without a value keeps the one it had.
      environment_variables: { API_TOKEN: { is_secret: true }, MODE: { is_secret: false, value: "staging" } }
    })
    const resealed = await server.run(
      Storage.Storage.use((storage) =>
        storage.getTrigger(Access.all, Id.fromUuid("trg", trigger.trigger_uuid)!)
      )
    )
    // Changing a value keeps when the variable was first set.
    expect(resealed.environment).toEqual([
      secret,
      { name: "MODE", secret: false, value: "staging", createdAt: secret.createdAt }
    ])
    expect(updated.body.result).toMatchObject({
      build_caching_enabled: true,
      branch_excludes: ["wip/*"],
      trigger_name: "main"
    })
    const listed = await call(a.token, "GET", `${a.base}/workers/${a.script}/triggers`)
    expect(listed.body.result.map((t: { trigger_uuid: string }) => t.trigger_uuid)).toEqual([
      trigger.trigger_uuid
    ])
    const deleted = await call(a.token, "DELETE", `${a.base}/triggers/${trigger.trigger_uuid}`)
    expect(deleted.body.result.deleted_on).toMatch(iso)
    expect((await call(a.token, "GET", `${a.base}/workers/${a.script}/triggers`)).body.result).toEqual([])
    const again = await call(a.token, "PATCH", `${a.base}/triggers/${trigger.trigger_uuid}`, {
      trigger_name: "x"
    })
    expect(again.status).toBe(409)
    isEnvelope(again.body, false)

    const invalid = await call(a.token, "POST", `${a.base}/triggers`, {
      external_script_id: a.script,
      trigger_name: "bad",
      environment_variables: { "not a name": { is_secret: false } }
    })
    expect(invalid.status).toBe(400)
    isEnvelope(invalid.body, false)
    const unknownField = await call(a.token, "POST", `${a.base}/triggers`, {
      external_script_id: a.script,
      trigger_name: "x",
      surprise: true
    })
    expect(unknownField.status).toBe(400)
    expect(unknownField.body.errors[0].message).toContain("surprise")
  })

  it("answers a build by uuid with the four timestamps, its trigger and its trigger metadata", async () => {
    const a = await account("builds")
    const trigger = (
      await call(a.token, "POST", `${a.base}/triggers`, {
        external_script_id: a.script,
        trigger_name: "manual",
        repository: "https://git.example.com/acme/worker.git",
        deploy_command: "npx deploy"
      })
    ).body.result
    const made = await call(a.token, "POST", `${a.base}/triggers/${trigger.trigger_uuid}/builds`, {
      commit_hash: commit
    })
    expect(made.status).toBe(200)
    const build = made.body.result
    expect(build).toEqual({
      build_uuid: expect.stringMatching(uuid),
      status: "queued",
      build_outcome: null,
      created_on: expect.stringMatching(iso),
      initializing_on: null,
      running_on: null,
      stopped_on: null,
      modified_on: expect.stringMatching(iso),
      build_trigger_metadata: {
        build_trigger_source: "manual",
        branch: null,
        commit_hash: commit,
        commit_message: null,
        author: null,
        repo_name: "https://git.example.com/acme/worker.git",
        build_command: null,
        deploy_command: "npx deploy",
        root_directory: null,
        environment_variables: {},
        build_token_name: null,
        build_token_uuid: null,
        provider_type: "git",
        provider_account_name: null
      },
      pull_request: null,
      trigger
    })
    const got = await call(a.token, "GET", `${a.base}/builds/${build.build_uuid}`)
    expect(got.body.result).toEqual(build)
    expect(Schema.is(AccountsApi.BuildView)(got.body.result)).toBe(true)
    // Both a branch and a commit, or neither, is a 400.
    const both = await call(a.token, "POST", `${a.base}/triggers/${trigger.trigger_uuid}/builds`, {
      commit_hash: commit,
      branch: "main"
    })
    expect(both.status).toBe(400)
    isEnvelope(both.body, false)

    // The status and outcome follow core's mapping through the whole lifecycle.
    const id = Id.fromUuid("bld", build.build_uuid)!
    await server.run(
      Storage.Storage.use((storage) =>
        Effect.gen(function* () {
          const fence = yield* claim(id)
          yield* storage.transition(id, { _tag: "Started", at: yield* DateTime.now, ...fence })
          yield* storage.transition(id, {
            _tag: "TimedOut",
            at: yield* DateTime.now,
            ...fence,
            error: "slow"
          })
        })
      )
    )
    const stopped = (await call(a.token, "GET", `${a.base}/builds/${build.build_uuid}`)).body.result
    expect(stopped).toMatchObject({ status: "stopped", build_outcome: "terminated" })
    for (const key of ["initializing_on", "running_on", "stopped_on"]) expect(stopped[key]).toMatch(iso)
  })

  it("maps version ids and script ids to their newest builds, at most 20 ids", async () => {
    const a = await account("latest")
    const [, newest] = await queue(a.version.id, 2)
    const byVersion = await call(
      a.token,
      "GET",
      `${a.base}/builds?version_ids=${Id.toUuid(a.version.id)},${Id.toUuid(a.app.id)}`
    )
    expect(byVersion.status).toBe(200)
    expect(Object.keys(byVersion.body.result.builds)).toEqual([Id.toUuid(a.version.id)])
    expect(byVersion.body.result.builds[Id.toUuid(a.version.id)].build_uuid).toBe(Id.toUuid(newest!.id))
    const latest = await call(a.token, "GET", `${a.base}/builds/latest?external_script_ids=${a.script}`)
    expect(latest.body.result.builds[a.script].build_uuid).toBe(Id.toUuid(newest!.id))
    const many = Array.from({ length: 21 }, () => a.script).join(",")
    const tooMany = await call(a.token, "GET", `${a.base}/builds/latest?external_script_ids=${many}`)
    expect(tooMany.status).toBe(400)
    isEnvelope(tooMany.body, false)
  })

  it("pages a script's builds with page and per_page (at most 200) and result_info", async () => {
    const a = await account("paging")
    const builds = await queue(a.version.id, 7)
    const page2 = await call(a.token, "GET", `${a.base}/workers/${a.script}/builds?page=2&per_page=3`)
    expect(page2.status).toBe(200)
    isEnvelope(page2.body, true)
    expect(page2.body.result.map((b: { build_uuid: string }) => b.build_uuid)).toEqual(
      builds
        .slice()
        .reverse()
        .slice(3, 6)
        .map((b) => Id.toUuid(b.id))
    )
    expect(page2.body.result_info).toEqual({ page: 2, per_page: 3, count: 3, total_count: 7, total_pages: 3 })
    const page3 = await call(a.token, "GET", `${a.base}/workers/${a.script}/builds?page=3&per_page=3`)
    expect(page3.body.result_info).toMatchObject({ count: 1 })
    const tooBig = await call(a.token, "GET", `${a.base}/workers/${a.script}/builds?per_page=201`)
    expect(tooBig.status).toBe(400)
  })

  it("pages logs with a cursor as [epoch, text] pairs, and cancels in the envelope", async () => {
    const a = await account("logs")
    const [build] = await queue(a.version.id)
    await server.run(
      Storage.Storage.use((storage) =>
        Effect.gen(function* () {
          const fence = yield* claim(build!.id)
          const at = DateTime.makeUnsafe(1_700_000_000_123)
          const lines: Array<LogLine.LogLine> = Array.from({ length: 1500 }, (_, i) => ({
            seq: i + 1,
            ts: at,
            stream: "stdout",
            step: null,
            text: `line ${i + 1}`
          }))
          yield* storage.appendLogs(build!.id, fence, lines)
        })
      )
    )
    const uuidOf = Id.toUuid(build!.id)
    const first = await call(a.token, "GET", `${a.base}/builds/${uuidOf}/logs`)
    expect(first.body.result.lines.length).toBe(1000)
    expect(first.body.result.lines[0]).toEqual([1_700_000_000_123, "line 1"])
    expect(first.body.result.truncated).toBe(false)
    const rest = await call(
      a.token,
      "GET",
      `${a.base}/builds/${uuidOf}/logs?cursor=${first.body.result.cursor}`
    )
    expect(rest.body.result.lines.length).toBe(500)
    expect(rest.body.result.lines.at(-1)).toEqual([1_700_000_000_123, "line 1500"])
    const bad = await call(a.token, "GET", `${a.base}/builds/${uuidOf}/logs?cursor=nonsense`)
    expect(bad.status).toBe(400)
    isEnvelope(bad.body, false)

    const cancelled = await call(a.token, "PUT", `${a.base}/builds/${uuidOf}/cancel`)
    expect(cancelled.status).toBe(200)
    // Claimed, so the request is recorded for its owner: not stopped yet.
    expect(cancelled.body.result).toEqual({ build_uuid: uuidOf, build_outcome: null, stopped_on: null })
    const [queued] = await queue(a.version.id)
    const now = await call(a.token, "PUT", `${a.base}/builds/${Id.toUuid(queued!.id)}/cancel`)
    expect(now.body.result).toEqual({
      build_uuid: Id.toUuid(queued!.id),
      build_outcome: "cancelled",
      stopped_on: expect.stringMatching(iso)
    })
  })

  it("answers every failure in the envelope: no token, unknown ids, other accounts, unknown routes, read-only tokens", async () => {
    const a = await account("scope-a")
    const b = await account("scope-b")
    const [build] = await queue(a.version.id)
    const noToken = await fetch(`${a.base}/builds/${Id.toUuid(build!.id)}`)
    expect(noToken.status).toBe(401)
    isEnvelope(await noToken.json(), false)
    for (const url of [
      `${b.base.replace(Id.toUuid(b.workspace.id), Id.toUuid(a.workspace.id))}/builds/${Id.toUuid(build!.id)}`,
      `${b.base}/builds/${Id.toUuid(build!.id)}`,
      `${b.base}/builds/not-a-uuid`,
      `${b.base}/workers/${a.script}/builds`,
      `${b.base}/workers/${a.script}/triggers`
    ]) {
      const answer = await call(b.token, "GET", url)
      expect(answer.status, url).toBe(404)
      isEnvelope(answer.body, false)
    }
    const hidden = await call(b.token, "GET", `${b.base}/builds?version_ids=${Id.toUuid(a.version.id)}`)
    expect(hidden.body.result.builds).toEqual({})
    const route = await call(a.token, "GET", `${a.base}/nowhere`)
    expect(route.status).toBe(404)
    isEnvelope(route.body, false)
    const reader = await server.token("read", [a.workspace.id])
    const refused = await call(reader, "PUT", `${a.base}/builds/${Id.toUuid(build!.id)}/cancel`)
    expect(refused.status).toBe(403)
    isEnvelope(refused.body, false)
  })
})
