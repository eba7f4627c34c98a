/**
 * What the HTTP benchmarks start from, written straight through storage: a workspace with an app and a
 * ready git version to build, and an admin token for all of it.
 */
import { Access, App, Authenticator, Storage } from "@kiln/core"
import { Effect } from "effect"

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
