/**
 * The accounts dialect (seed 002) against the real server: every endpoint, its fields and types, the
 * envelope on every answer (errors, auth failures and unknown routes included), triggers, manual builds,
 * log pages, and scope — another account's objects are 404s like missing ones. The second part reads the
 * answers as a client of that API does: a schema of every documented field, each required with its type.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Access, App, Authenticator, type Build, Id, type LogLine, Secrets, Storage } from "@kiln/core"
import { GitServer } from "@kiln/core/testing"
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
  // Issued here rather than with server.token: the build token a manual build records is this one's id.
  const { token: issued, secret: token } = await server.run(
    Authenticator.issueToken({
      name: `${name} deploy token`,
      role: "write",
      workspaceIds: [workspace.id],
      expiresAt: null
    })
  )
  return {
    workspace,
    app,
    version,
    token,
    tokenId: issued.id,
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
const uuidV8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
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
      repo_connection: {
        repo_connection_uuid: expect.stringMatching(uuidV8),
        repo_id: "https://git.example.com/acme/worker.git",
        repo_name: "acme/worker",
        provider_type: "git",
        provider_account_id: "",
        provider_account_name: "acme",
        created_on: trigger.created_on,
        modified_on: trigger.modified_on,
        deleted_on: null
      },
      branch_includes: ["main"],
      branch_excludes: [],
      path_includes: ["*"],
      path_excludes: ["docs/*"],
      build_command: "npm run build",
      // Set by none: the app's own applies, and the document's string type holds "".
      deploy_command: "",
      root_directory: "",
      build_caching_enabled: false,
      environment_variables: {
        API_TOKEN: { is_secret: true, value: null, created_on: trigger.created_on },
        MODE: { is_secret: false, value: "production", created_on: trigger.created_on }
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
    // Both were set when the trigger was made: changing a value keeps when the variable was first set.
    expect(resealed.environment).toEqual([
      secret,
      { name: "MODE", secret: false, value: "staging", createdAt: trigger.created_on }
    ])
    expect(updated.body.result).toMatchObject({
      build_caching_enabled: true,
      branch_excludes: ["wip/*"],
      trigger_name: "main",
      environment_variables: { MODE: { is_secret: false, value: "staging", created_on: trigger.created_on } }
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
        // Built by its hash: no branch; the version was never fetched, so no message or author either.
        branch: "",
        commit_hash: commit,
        commit_message: "",
        author: "",
        repo_name: "acme/worker",
        build_command: "",
        deploy_command: "npx deploy",
        root_directory: "",
        environment_variables: {},
        build_token_name: "builds deploy token",
        build_token_uuid: Id.toUuid(a.tokenId),
        provider_type: "git",
        provider_account_name: "acme"
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
    expect(page2.body.result_info).toEqual({
      page: 2,
      per_page: 3,
      count: 3,
      total_count: 7,
      total_pages: 3,
      next_page: true
    })
    const page3 = await call(a.token, "GET", `${a.base}/workers/${a.script}/builds?page=3&per_page=3`)
    expect(page3.body.result_info).toMatchObject({ count: 1, next_page: false })
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
    // Still running: the last page gives its cursor again, to ask later for what follows.
    expect(rest.body.result.cursor).toEqual(expect.any(String))
    const bad = await call(a.token, "GET", `${a.base}/builds/${uuidOf}/logs?cursor=nonsense`)
    expect(bad.status).toBe(400)
    isEnvelope(bad.body, false)

    const cancelled = await call(a.token, "PUT", `${a.base}/builds/${uuidOf}/cancel`)
    expect(cancelled.status).toBe(200)
    // Claimed, so the request is recorded for its owner: not stopped yet, and the answer says so.
    expect(cancelled.body.result).toEqual({
      build_uuid: uuidOf,
      status: "initializing",
      build_outcome: null,
      stopped_on: null
    })
    expect(cancelled.body.messages).toEqual([
      { code: 202, message: expect.stringContaining("its build_outcome follows") }
    ])
    const [queued] = await queue(a.version.id)
    const now = await call(a.token, "PUT", `${a.base}/builds/${Id.toUuid(queued!.id)}/cancel`)
    expect(now.body.result).toEqual({
      build_uuid: Id.toUuid(queued!.id),
      status: "stopped",
      build_outcome: "cancelled",
      stopped_on: expect.stringMatching(iso)
    })
    expect(now.body.messages).toEqual([])
    const again = await call(a.token, "PUT", `${a.base}/builds/${Id.toUuid(queued!.id)}/cancel`)
    expect(again.body.result).toEqual(now.body.result)
    expect(again.body.messages).toEqual([
      { code: 409, message: "the build had already stopped (cancelled): nothing to cancel" }
    ])
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

// -----------------------------------------------------------------------------------------------------
// Read as a client of that API reads it
// -----------------------------------------------------------------------------------------------------

/**
 * What a client of the documented API requires, the way the client Cloudflare ships for Workers Builds
 * parses a build: every documented field present, with exactly its type (strings are strings, never null,
 * unless the field is a time that has not happened yet), and every time a date `new Date(…)` reads.
 * Fields the documents leave out may be there too: such a client ignores them.
 */
const Dated = Schema.String.check(
  Schema.makeFilter((text: string) => !Number.isNaN(new Date(text).getTime()) || "expected a date")
)
const Epoch = Schema.Number.check(
  Schema.makeFilter((n: number) => (Number.isInteger(n) && n > 1e12) || "expected epoch milliseconds")
)
const Strings = Schema.Array(Schema.String)
const Status = Schema.Literals(["queued", "initializing", "running", "stopped"])
const Outcome = Schema.NullOr(Schema.Literals(["success", "fail", "skipped", "cancelled", "terminated"]))
const Variables = Schema.Record(
  Schema.String,
  Schema.Struct({ is_secret: Schema.Boolean, created_on: Dated, value: Schema.NullOr(Schema.String) })
)

const ClientTrigger = Schema.Struct({
  trigger_uuid: Schema.String,
  external_script_id: Schema.String,
  trigger_name: Schema.String,
  build_command: Schema.String,
  deploy_command: Schema.String,
  root_directory: Schema.String,
  branch_includes: Strings,
  branch_excludes: Strings,
  path_includes: Strings,
  path_excludes: Strings,
  build_caching_enabled: Schema.Boolean,
  created_on: Dated,
  modified_on: Dated,
  deleted_on: Schema.NullOr(Dated),
  repo_connection: Schema.Struct({
    repo_connection_uuid: Schema.String,
    repo_id: Schema.String,
    repo_name: Schema.String,
    provider_type: Schema.String,
    provider_account_id: Schema.String,
    provider_account_name: Schema.String,
    created_on: Dated,
    modified_on: Dated,
    deleted_on: Schema.NullOr(Dated)
  })
})

const ClientBuild = Schema.Struct({
  build_uuid: Schema.String,
  status: Status,
  build_outcome: Outcome,
  created_on: Dated,
  modified_on: Dated,
  initializing_on: Schema.NullOr(Dated),
  running_on: Schema.NullOr(Dated),
  stopped_on: Schema.NullOr(Dated),
  trigger: ClientTrigger,
  build_trigger_metadata: Schema.Struct({
    build_trigger_source: Schema.Literals(["push", "pull_request", "manual", "api"]),
    branch: Schema.String,
    commit_hash: Schema.String,
    commit_message: Schema.String,
    author: Schema.String,
    build_command: Schema.String,
    deploy_command: Schema.String,
    root_directory: Schema.String,
    build_token_name: Schema.String,
    build_token_uuid: Schema.String,
    environment_variables: Variables,
    repo_name: Schema.String,
    provider_account_name: Schema.String,
    provider_type: Schema.String
  }),
  // Only a pull request's build has one; Kiln records none (the reference says so).
  pull_request: Schema.NullOr(Schema.Struct({ created_on: Dated, pull_request_url: Schema.String }))
})

const Envelope = <S extends Schema.Top>(result: S) =>
  Schema.Struct({
    success: Schema.Literal(true),
    errors: Schema.Array(Schema.Unknown),
    messages: Schema.Array(Schema.Struct({ code: Schema.Number, message: Schema.String })),
    result
  })

const ClientBuildsByScript = Schema.Struct({
  ...Envelope(Schema.Array(ClientBuild)).fields,
  result_info: Schema.Struct({
    next_page: Schema.Boolean,
    page: Schema.Number,
    per_page: Schema.Number,
    count: Schema.Number,
    total_count: Schema.Number,
    total_pages: Schema.Number
  })
})

const ClientLogs = Schema.Struct({
  cursor: Schema.optionalKey(Schema.String),
  truncated: Schema.Boolean,
  lines: Schema.Array(Schema.Tuple([Epoch, Schema.String]))
})

const ClientCancel = Schema.Struct({
  build_uuid: Schema.String,
  status: Status,
  build_outcome: Outcome,
  stopped_on: Schema.NullOr(Dated)
})

/** Decodes a reply as the client would, failing with every field it would reject. */
const read = <S extends Schema.Top>(schema: S, reply: Reply): S["Type"] => {
  expect(reply.status, reply.text).toBe(200)
  return Schema.decodeUnknownSync(schema as never)(reply.body, { errors: "all" }) as S["Type"]
}

describe("http › accounts dialect, read by a client of that API", () => {
  const repositories = mkdtempSync(join(tmpdir(), "kiln-accounts-git-"))
  const commits = ["first", "second: ship it"].map((message, i) => ({
    sha: GitServer.commit(
      join(repositories, "acme/worker.git"),
      { "index.js": `export default ${i}\n` },
      message
    ),
    message
  }))
  let served: GitServer.GitServer
  const git = { url: "", commits }
  beforeAll(async () => {
    served = await GitServer.start(repositories)
    git.url = `${served.url}/acme/worker.git`
  })
  afterAll(async () => {
    await served?.close()
    rmSync(repositories, { recursive: true, force: true })
  })

  /** An account with a trigger on the served repository, as that API spells its root: `/`. */
  const withTrigger = async (name: string) => {
    const a = await account(name)
    const created = await call(a.token, "POST", `${a.base}/triggers`, {
      external_script_id: a.script,
      trigger_name: "production",
      repository: git.url,
      branch_includes: ["main"],
      build_command: "npm run build",
      deploy_command: "npx wrangler deploy",
      root_directory: "/",
      environment_variables: {
        API_TOKEN: { is_secret: true, value: "s3cret" },
        MODE: { is_secret: false, value: "production" }
      }
    })
    return { ...a, trigger: read(Envelope(ClientTrigger), created).result }
  }

  /** A manual build of the trigger, as the client reads it. */
  const manualBuild = async (
    a: Awaited<ReturnType<typeof withTrigger>>,
    body: { branch: string } | { commit_hash: string } = { branch: "main" }
  ) =>
    read(
      Envelope(ClientBuild),
      await call(a.token, "POST", `${a.base}/triggers/${a.trigger.trigger_uuid}/builds`, body)
    ).result

  /** Stops a build as its engine would: claimed, started, `lines` appended, then succeeded. */
  const runToSuccess = (id: Build.Build["id"], lines: number) =>
    server.run(
      Storage.Storage.use((storage) =>
        Effect.gen(function* () {
          const fence = yield* claim(id)
          yield* storage.transition(id, { _tag: "Started", at: yield* DateTime.now, ...fence })
          const at = yield* DateTime.now
          const all: Array<LogLine.LogLine> = Array.from({ length: lines }, (_, i) => ({
            seq: i + 1,
            ts: at,
            stream: "stdout",
            step: null,
            text: `line ${i + 1}`
          }))
          yield* storage.appendLogs(id, fence, all)
          yield* storage.transition(id, {
            _tag: "Succeeded",
            at: yield* DateTime.now,
            ...fence,
            imageTag: null,
            imageDigest: null
          })
        })
      )
    )

  it("creates and lists a trigger whose root directory is /, with its repository connection", async () => {
    const a = await withTrigger("client-trigger")
    expect(a.trigger).toMatchObject({
      root_directory: "/",
      repo_connection: {
        repo_id: git.url,
        repo_name: "acme/worker",
        provider_type: "git",
        provider_account_id: "",
        provider_account_name: "acme",
        created_on: a.trigger.created_on,
        modified_on: a.trigger.modified_on,
        deleted_on: null
      }
    })
    expect(a.trigger.repo_connection.repo_connection_uuid).toMatch(uuidV8)
    // `/` is the repository's root: Kiln's "".
    const stored = () =>
      server.run(
        Storage.Storage.use((storage) =>
          storage.getTrigger(Access.all, Id.fromUuid("trg", a.trigger.trigger_uuid)!)
        )
      )
    expect((await stored()).rootDirectory).toBe("")
    const listed = read(
      Envelope(Schema.Array(ClientTrigger)),
      await call(a.token, "GET", `${a.base}/workers/${a.script}/triggers`)
    )
    expect(listed.result).toEqual([a.trigger])

    // A second trigger on the same repository shares the connection; another account's does not.
    const second = await call(a.token, "POST", `${a.base}/triggers`, {
      external_script_id: a.script,
      trigger_name: "preview",
      repository: git.url
    })
    expect(read(Envelope(ClientTrigger), second).result.repo_connection.repo_connection_uuid).toBe(
      a.trigger.repo_connection.repo_connection_uuid
    )
    const other = await withTrigger("client-trigger-other")
    expect(other.trigger.repo_connection.repo_connection_uuid).not.toBe(
      a.trigger.repo_connection.repo_connection_uuid
    )

    // A directory in either spelling; "" (or null) for none, the app's own.
    const patch = async (root_directory: string | null) =>
      read(
        Envelope(ClientTrigger),
        await call(a.token, "PATCH", `${a.base}/triggers/${a.trigger.trigger_uuid}`, { root_directory })
      ).result.root_directory
    expect(await patch("/apps/web")).toBe("/apps/web")
    expect((await stored()).rootDirectory).toBe("apps/web")
    expect(await patch("apps/api")).toBe("/apps/api")
    expect(await patch("")).toBe("")
    expect((await stored()).rootDirectory).toBeNull()
    expect(await patch("/")).toBe("/")
    const outside = await call(a.token, "PATCH", `${a.base}/triggers/${a.trigger.trigger_uuid}`, {
      root_directory: "/../etc"
    })
    expect(outside.status).toBe(400)
    expect(outside.body.errors[0].message).toContain("a relative path inside the source tree")
    // An empty command is none, as the views write none: the app's own applies.
    const cleared = read(
      Envelope(ClientTrigger),
      await call(a.token, "PATCH", `${a.base}/triggers/${a.trigger.trigger_uuid}`, {
        build_command: "",
        deploy_command: ""
      })
    ).result
    expect([cleared.build_command, cleared.deploy_command]).toEqual(["", ""])
    expect(await stored()).toMatchObject({ buildCommand: null, deployCommand: null })
  })

  it("answers a manual build of a branch with every field the client reads, from the repository", async () => {
    const a = await withTrigger("client-build")
    const made = await manualBuild(a)
    const head = git.commits.at(-1)!
    expect(made.build_trigger_metadata).toEqual({
      build_trigger_source: "manual",
      branch: "main",
      commit_hash: head.sha,
      commit_message: head.message,
      author: "Kiln Tests <tests@kiln.invalid>",
      build_command: "npm run build",
      deploy_command: "npx wrangler deploy",
      root_directory: "/",
      build_token_name: "client-build deploy token",
      build_token_uuid: Id.toUuid(a.tokenId),
      environment_variables: {
        API_TOKEN: { is_secret: true, created_on: a.trigger.created_on, value: null },
        MODE: { is_secret: false, created_on: a.trigger.created_on, value: "production" }
      },
      repo_name: "acme/worker",
      provider_account_name: "acme",
      provider_type: "git"
    })
    expect(made.trigger).toEqual(a.trigger)
    expect(made).toMatchObject({ status: "queued", build_outcome: null, pull_request: null })
    const got = read(Envelope(ClientBuild), await call(a.token, "GET", `${a.base}/builds/${made.build_uuid}`))
    expect(got.result).toEqual(made)

    // By its hash: the first commit, no branch.
    const first = await manualBuild(a, { commit_hash: git.commits[0]!.sha })
    expect(first.build_trigger_metadata).toMatchObject({ branch: "", commit_hash: git.commits[0]!.sha })
  })

  it("maps versions and scripts to builds the client reads, a build no trigger made included", async () => {
    const a = await withTrigger("client-maps")
    const manual = await manualBuild(a)
    const stored = await server.run(
      Storage.Storage.use((storage) => storage.getBuild(Access.all, Id.fromUuid("bld", manual.build_uuid)!))
    )
    // Queued through another API, with no trigger: the newest build of the script.
    const [plain] = await queue(a.version.id)
    const byVersions = read(
      Envelope(Schema.Struct({ builds: Schema.Record(Schema.String, ClientBuild) })),
      await call(
        a.token,
        "GET",
        `${a.base}/builds?version_ids=${Id.toUuid(stored.appVersionId)},${Id.toUuid(a.version.id)}`
      )
    ).result.builds
    expect(byVersions[Id.toUuid(stored.appVersionId)]).toEqual(manual)
    const untriggered = byVersions[Id.toUuid(a.version.id)]!
    expect(untriggered.build_uuid).toBe(Id.toUuid(plain!.id))
    expect(untriggered.trigger).toMatchObject({
      trigger_uuid: "",
      trigger_name: "",
      external_script_id: a.script,
      build_command: "",
      root_directory: "",
      path_includes: [],
      created_on: untriggered.created_on,
      repo_connection: { repo_connection_uuid: "", repo_name: "", created_on: untriggered.created_on }
    })
    expect(untriggered.build_trigger_metadata).toMatchObject({
      build_trigger_source: "api",
      author: "test",
      commit_hash: commit,
      branch: "",
      build_token_uuid: "",
      repo_name: "",
      provider_type: ""
    })
    const latest = read(
      Envelope(Schema.Struct({ builds: Schema.Record(Schema.String, ClientBuild) })),
      await call(a.token, "GET", `${a.base}/builds/latest?external_script_ids=${a.script}`)
    ).result.builds
    expect(latest[a.script]).toEqual(untriggered)
  })

  it("pages a script's builds until next_page is false", async () => {
    const a = await withTrigger("client-pages")
    for (const branch of ["main", "main", "main"]) {
      await call(a.token, "POST", `${a.base}/triggers/${a.trigger.trigger_uuid}/builds`, { branch })
    }
    await queue(a.version.id, 2)
    const seen: Array<string> = []
    let page = 1
    for (;;) {
      const reply = read(
        ClientBuildsByScript,
        await call(a.token, "GET", `${a.base}/workers/${a.script}/builds?page=${page}&per_page=2`)
      )
      seen.push(...reply.result.map((build) => build.build_uuid))
      expect(reply.result_info).toEqual({
        page,
        per_page: 2,
        count: reply.result.length,
        total_count: 5,
        total_pages: 3,
        next_page: page < 3
      })
      if (!reply.result_info.next_page) break
      page++
    }
    expect(seen.length).toBe(5)
    expect(new Set(seen).size).toBe(5)
  })

  it("pages a build's logs until the cursor is absent, and no further", async () => {
    const a = await withTrigger("client-logs")
    const made = await manualBuild(a)
    const pageOf = async (cursor: string | undefined) =>
      read(
        Envelope(ClientLogs),
        await call(
          a.token,
          "GET",
          `${a.base}/builds/${made.build_uuid}/logs${cursor === undefined ? "" : `?cursor=${cursor}`}`
        )
      ).result
    // Queued, no lines yet: the cursor is there, to ask again once there are.
    const early = await pageOf(undefined)
    expect(early.lines).toEqual([])
    expect(early.cursor).toEqual(expect.any(String))
    await runToSuccess(Id.fromUuid("bld", made.build_uuid)!, 2500)
    const pages: Array<number> = []
    const lines: Array<readonly [number, string]> = []
    let cursor: string | undefined
    do {
      const page = await pageOf(cursor)
      pages.push(page.lines.length)
      lines.push(...page.lines)
      cursor = page.cursor
      expect(pages.length).toBeLessThan(10)
    } while (cursor !== undefined)
    expect(pages).toEqual([1000, 1000, 500])
    expect(lines.map(([, text]) => text)).toEqual(Array.from({ length: 2500 }, (_, i) => `line ${i + 1}`))
    for (const [at] of lines) expect(new Date(at).toISOString()).toMatch(iso)
    // A stopped build's log of exactly one page ends on it; so does one with no lines.
    // (One at a time: a claim takes every queued build.)
    const [exact] = await queue(a.version.id)
    await runToSuccess(exact!.id, 1000)
    const [empty] = await queue(a.version.id)
    await runToSuccess(empty!.id, 0)
    const [exactPage, emptyPage] = await Promise.all(
      [exact!, empty!].map(async (build) =>
        read(Envelope(ClientLogs), await call(a.token, "GET", `${a.base}/builds/${Id.toUuid(build.id)}/logs`))
      )
    )
    expect([exactPage!.result.lines.length, "cursor" in exactPage!.result]).toEqual([1000, false])
    expect([emptyPage!.result.lines.length, "cursor" in emptyPage!.result]).toEqual([0, false])
  })

  it("cancels a running build with what it is now, and says that its outcome follows", async () => {
    const a = await withTrigger("client-cancel")
    const made = await manualBuild(a)
    const id = Id.fromUuid("bld", made.build_uuid)!
    const fence = await server.run(
      Storage.Storage.use((storage) =>
        Effect.gen(function* () {
          const fence = yield* claim(id)
          yield* storage.transition(id, { _tag: "Started", at: yield* DateTime.now, ...fence })
          return fence
        })
      )
    )
    const cancelled = read(
      Envelope(ClientCancel),
      await call(a.token, "PUT", `${a.base}/builds/${made.build_uuid}/cancel`)
    )
    expect(cancelled.result).toEqual({
      build_uuid: made.build_uuid,
      status: "running",
      build_outcome: null,
      stopped_on: null
    })
    expect(cancelled.messages[0]!.message).toContain("its build_outcome follows")
    // Its runner stops it: the outcome is there.
    await server.run(
      Storage.Storage.use((storage) =>
        Effect.gen(function* () {
          yield* storage.transition(id, { _tag: "Stopped", at: yield* DateTime.now, ...fence })
        })
      )
    )
    const after = read(
      Envelope(ClientBuild),
      await call(a.token, "GET", `${a.base}/builds/${made.build_uuid}`)
    )
    expect(after.result).toMatchObject({ status: "stopped", build_outcome: "cancelled" })
  })
})
