/**
 * What the HTTP benchmarks start from, written straight through storage: a workspace with an app and a
 * ready git version to build, and an admin token for all of it.
 */
import { Access, App, Authenticator, Storage } from "@kiln/core"
import { DateTime, Effect } from "effect"

export const readyVersion = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  const workspace = yield* storage.createWorkspace({ name: "bench" })
  const app = yield* storage.createApp(Access.all, {
    workspaceId: workspace.id,
    handle: "bench",
    name: "Bench",
    kind: "app",
    build: App.defaultBuildSettings
  })
  const version = yield* storage.createAppVersion(Access.all, {
    appId: app.id,
    source: { type: "git", url: "https://git.example.com/bench.git", commitSha: "c".repeat(40) }
  })
  const { secret } = yield* Authenticator.issueToken({
    name: "bench",
    role: "admin",
    workspaceIds: "*",
    expiresAt: null
  })
  return { version, token: secret }
})

/** A build of `readyVersion` claimed by "bench" and started, with no log yet; its fence and the token. */
export const startedBuild = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  const { version, token } = yield* readyVersion
  const build = yield* storage.createBuild(Access.all, {
    appVersionId: version.id,
    trigger: "manual",
    createdBy: "bench"
  })
  const fence = { owner: "bench", attempt: 1 }
  yield* storage.claimNext({ owner: fence.owner, leaseMs: 3_600_000, max: 1 })
  const at = yield* DateTime.now
  yield* storage.transition(build.id, { _tag: "Started", at, ...fence })
  return { buildId: build.id, token, fence, at }
}).pipe(Effect.orDie)
