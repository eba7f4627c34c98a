/**
 * Builds `examples/hello-app` through Kiln's HTTP API with the typed client (`npm run demo`, while
 * `npm start` runs in another terminal): finds or creates the app, uploads the app's directory as a new
 * version, queues a build, follows its log over the WebSocket, and prints the outcome and the image.
 * Exits non-zero when the build did not complete.
 *
 * Environment: `KILN_URL` (default `http://127.0.0.1:8787`); `KILN_TOKEN` (default: the server's
 * `.kiln/admin-token`, which `KILN_DATA_DIR` moves).
 */
import { readFileSync } from "node:fs"
import { NodeRuntime } from "@effect/platform-node"
import { KilnClient } from "@kiln/http/client"
import { Console, Effect, Stream } from "effect"
import * as BuildProgress from "../shared/BuildProgress.ts"
import * as DataDir from "../shared/DataDir.ts"
import * as HelloApp from "../shared/HelloApp.ts"

const baseUrl = process.env.KILN_URL ?? "http://127.0.0.1:8787"

const tokenFile = DataDir.fromEnv().adminToken
const readToken = Effect.try({
  try: () => process.env.KILN_TOKEN ?? readFileSync(tokenFile, "utf8").trim(),
  catch: () =>
    new Error(`no token: start the server first (npm start), which writes ${tokenFile}, or set KILN_TOKEN`)
})

/** The app `hello-app`, created (in the first workspace) if this server has none. */
const findOrCreateApp = Effect.gen(function* () {
  const client = yield* KilnClient.KilnClient
  const filter = JSON.stringify({ handle: { eq: HelloApp.handle } })
  const [existing] = (yield* client.apps.list({ query: { filter, limit: "1" } })).data
  if (existing !== undefined) return existing
  const [first] = (yield* client.workspaces.list({ query: { limit: "1" } })).data
  const workspace = first ?? (yield* client.workspaces.create({ payload: { name: "Examples" } }))
  return yield* client.apps.create({
    payload: {
      workspaceId: workspace.id,
      handle: HelloApp.handle,
      name: HelloApp.name,
      kind: "app",
      build: HelloApp.build
    }
  })
})

const program = Effect.gen(function* () {
  const client = yield* KilnClient.KilnClient
  const app = yield* findOrCreateApp
  yield* Console.log(`Kiln at ${baseUrl}: app ${app.handle} (${app.id})`)

  const version = yield* client.appVersions.create({
    payload: { appId: app.id, source: { type: "archive" } }
  })
  const ready = yield* client.appVersions.uploadArchive({
    params: { id: version.id },
    payload: HelloApp.archive()
  })
  const size = ready.source.type === "archive" ? `${ready.source.sizeBytes} bytes, ` : ""
  yield* Console.log(
    `version ${ready.id}: ${HelloApp.build.rootDirectory} uploaded (${size}sha256 ${ready.commitSha?.slice(0, 12)})`
  )

  // Keyed by the version: a retried request cannot queue a second build of it.
  const build = yield* client.builds.create({
    payload: { appVersionId: ready.id },
    headers: { "idempotency-key": `demo-${ready.id}` }
  })
  yield* Console.log(
    `build ${build.id} (#${build.sequenceNumber}) queued; its log, live over the WebSocket:\n`
  )

  const progress = BuildProgress.make()
  yield* client.followLogs(build.id).pipe(
    Stream.runForEach((message) =>
      Effect.sync(() => (message.type === "line" ? progress.line(message) : progress.status(message.status)))
    ),
    Effect.ensuring(Effect.sync(progress.done))
  )

  const done = yield* client.builds.get({ params: { id: build.id } })
  yield* Console.log(`\n${BuildProgress.summary(done)}`)
  if (done.status !== "completed") process.exitCode = 1
})

Effect.gen(function* () {
  const token = yield* readToken
  yield* program.pipe(Effect.provide(KilnClient.layer({ baseUrl, token })))
}).pipe(
  // What went wrong, in a line: no stack traces for a missing server or a refused token.
  Effect.catchTag("HttpClientError", () =>
    Effect.fail(new Error(`cannot reach Kiln at ${baseUrl}: is npm start running?`))
  ),
  Effect.catch((error) =>
    Console.error(`demo: ${error.message}`).pipe(Effect.andThen(Effect.sync(() => (process.exitCode = 1))))
  ),
  NodeRuntime.runMain
)
