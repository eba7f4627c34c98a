/**
 * An app that embeds Kiln from its published packages: plain `node`, no source condition, no TypeScript.
 * `.ci/packed` installs the packed tarballs beside this file in a project outside the repository and runs it.
 *
 * It serves Kiln's HTTP API over SQLite, the source store, the Docker runner and the engine, builds a small
 * Dockerfile app from an uploaded archive through that API, and reads the build and its log back; then it
 * starts a throwaway PostgreSQL with `@kiln/adapter-postgres/testing` and stores a workspace in it.
 * Exits non-zero, saying why, if any of it fails; removes its directory and its images either way.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { PgStorage } from "@kiln/adapter-postgres"
import * as PgTesting from "@kiln/adapter-postgres/testing"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, Authenticator, Cursor, Engine, Fields, Query, SourceStore, Storage } from "@kiln/core"
import { KilnHttp } from "@kiln/http"
import { DockerRunner } from "@kiln/runner-docker"
import { Effect, Layer } from "effect"
import { HttpServer } from "effect/http"

const dir = mkdtempSync(join(tmpdir(), "kiln-consumer-"))
const namespace = `kiln-consumer-${process.pid}`
const app = join(dir, "app")
mkdirSync(app)
writeFileSync(join(app, "Dockerfile"), 'FROM busybox\nRUN echo "built from the packed packages"\n')

const stack = Layer.mergeAll(Engine.layer({ concurrency: 1 }), Authenticator.layer).pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      SqliteStorage.layer({ filename: join(dir, "kiln.db") }),
      SourceStore.layer({ directory: join(dir, "sources") }),
      DockerRunner.layer({ namespace })
    )
  ),
  Layer.provideMerge(Cursor.layer("a cursor secret for the consumer check"))
)

const fail = (message) => Effect.die(new Error(message))

/** JSON from the API, or a failure that shows the answer. */
const call = (base, token, path, init = {}) =>
  Effect.promise(async () => {
    const response = await fetch(`${base}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, ...init.headers }
    })
    const text = await response.text()
    return { status: response.status, text, json: () => JSON.parse(text) }
  }).pipe(
    Effect.flatMap((answer) =>
      answer.status < 300 ? Effect.succeed(answer) : fail(`${path}: ${answer.status} ${answer.text}`)
    )
  )

const throughHttp = Effect.gen(function* () {
  const base = `${yield* HttpServer.addressFormattedWith(Effect.succeed)}/api`
  const storage = yield* Storage.Storage
  const workspace = yield* storage.createWorkspace({ name: "Consumer" })
  const { secret } = yield* Authenticator.issueToken({
    name: "consumer",
    workspaceIds: "*",
    role: "admin",
    expiresAt: null
  })
  const json = { "content-type": "application/json" }
  const created = yield* call(base, secret, "/apps", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ workspaceId: workspace.id, handle: "consumer", name: "Consumer", kind: "app" })
  })
  const version = yield* call(base, secret, "/app-versions", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ appId: created.json().id, source: { type: "archive" } })
  })
  const archive = execFileSync("tar", ["-czf", "-", "-C", app, "."])
  yield* call(base, secret, `/app-versions/${version.json().id}/archive`, {
    method: "POST",
    headers: { "content-type": "application/gzip" },
    body: archive
  })
  const queued = yield* call(base, secret, "/builds", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ appVersionId: version.json().id })
  })
  const id = queued.json().id
  let build = queued.json()
  for (let waited = 0; build.status === "pending" || build.status === "running"; waited += 250) {
    if (waited > 120_000) return yield* fail(`build ${id} still ${build.status} after 120 s`)
    yield* Effect.sleep("250 millis")
    build = (yield* call(base, secret, `/builds/${id}`)).json()
  }
  const log = (yield* call(base, secret, `/builds/${id}/logs?format=text`)).text
  if (build.status !== "completed") return yield* fail(`build ${id} ended ${build.status}:\n${log}`)
  if (!log.includes("built from the packed packages"))
    return yield* fail(`the log lacks the RUN line:\n${log}`)
  console.log(`consumer: build ${id} completed through the HTTP API, image ${build.imageTag}`)
  // The dashboard's page and the vendor builds it imports come from the installed packages.
  const root = base.replace(/\/api$/, "")
  for (const file of [
    "",
    "app.js",
    "vendor/preact.js",
    "vendor/preact-hooks.js",
    "vendor/htm.js",
    "vendor/ansi_up.js"
  ]) {
    yield* call(root, secret, `/ui/${file}`)
  }
  console.log("consumer: the dashboard's page and scripts are served from the packed @kiln/http")
})

const onPostgres = Effect.gen(function* () {
  const server = yield* Effect.acquireRelease(
    Effect.promise(() => PgTesting.startServer()),
    (started) => Effect.promise(() => started.stop())
  )
  const workspaces = yield* Effect.gen(function* () {
    const storage = yield* Storage.Storage
    yield* storage.createWorkspace({ name: "Consumer on PostgreSQL" })
    const query = yield* Query.fromParams(Fields.workspaces, Access.all, {})
    return (yield* storage.listWorkspaces(Access.all, query)).rows
  }).pipe(Effect.provide(PgStorage.layer({ connectionString: server.url })))
  if (workspaces.length !== 1)
    return yield* fail(`expected one workspace on PostgreSQL, found ${workspaces.length}`)
  console.log("consumer: PgStorage stored a workspace in the embedded PostgreSQL")
})

const program = Effect.gen(function* () {
  yield* throughHttp.pipe(
    Effect.provide(KilnHttp.layerServer({ port: 0, dashboard: true }).pipe(Layer.provideMerge(stack)))
  )
  yield* onPostgres
}).pipe(Effect.scoped)

Effect.runPromise(program)
  .then(
    () => console.log("consumer: ok"),
    (error) => {
      console.error("consumer: FAILED", error)
      process.exitCode = 1
    }
  )
  .finally(() => {
    const docker = (...args) => execFileSync("docker", args, { encoding: "utf8" }).split("\n").filter(Boolean)
    const images = docker("images", "-q", "--filter", `label=dev.kiln.namespace=${namespace}`)
    if (images.length > 0) docker("rmi", "-f", ...new Set(images))
    rmSync(dir, { recursive: true, force: true })
  })
