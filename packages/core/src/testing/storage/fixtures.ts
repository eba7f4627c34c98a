/**
 * Shared setup for the storage suites: a fresh storage per test (`run`), and the few rows most tests
 * need. `StorageConformance` exports the rows (`seed`, `queue`, `claimOne`) for an adapter's own tests.
 */
import { it } from "@effect/vitest"
import { Effect, type Layer, Schema, type Scope } from "effect"
import * as Access from "../../Access.ts"
import * as App from "../../App.ts"
import type { AppVersion } from "../../AppVersion.ts"
import * as Build from "../../Build.ts"
import type { Fence } from "../../BuildState.ts"
import type { Table } from "../../Fields.ts"
import * as Id from "../../Id.ts"
import * as Query from "../../Query.ts"
import { Storage, type StorageOptions } from "../../Storage.ts"

/** Makes a fresh, empty storage each time it is called. */
export type MakeStorage = (options?: StorageOptions) => Layer.Layer<Storage, unknown>

/** Registers a test that runs against a fresh storage, on the real clock (leases are real time). */
export const test =
  (make: MakeStorage) =>
  (
    name: string,
    body: () => Effect.Effect<void, unknown, Storage | Scope.Scope>,
    options: { readonly storage?: StorageOptions; readonly timeout?: number } = {}
  ) =>
    it.live(name, () => Effect.provide(body(), make(options.storage)), options.timeout ?? 30_000)

export const sha = (n: number): string => n.toString(16).padStart(40, "0")

/** Well-formed ids that no storage has issued. */
export const unissued = {
  workspace: Schema.decodeSync(Id.WorkspaceId)("wsp_01jd0000000000000000000000"),
  app: Schema.decodeSync(Id.AppId)("app_01jd0000000000000000000000"),
  build: Schema.decodeSync(Id.BuildId)("bld_01jd0000000000000000000000")
}

/** A workspace with one app (handle `web` unless given) and one ready version. */
export const seed = Effect.fnUntraced(function* (
  options: { readonly handle?: string; readonly name?: string } = {}
) {
  const storage = yield* Storage
  const workspace = yield* storage.createWorkspace({ name: options.name ?? "acme" })
  const app = yield* storage.createApp(Access.all, {
    workspaceId: workspace.id,
    handle: options.handle ?? "web",
    name: "Web",
    kind: "app",
    build: App.defaultBuildSettings
  })
  const version = yield* storage.createAppVersion(Access.all, {
    appId: app.id,
    source: { type: "git", url: "https://git.example.com/acme/web.git", commitSha: sha(1) }
  })
  return { storage, workspace, app, version }
})

export const queue = (version: AppVersion, count = 1) =>
  Storage.use((storage) =>
    Effect.forEach(Array.from({ length: count }), () =>
      storage.createBuild(Access.all, { appVersionId: version.id, trigger: "manual", createdBy: "test" })
    )
  )

/** Claims exactly one build for `owner` and returns it with its fence. */
export const claimOne = (owner: string, leaseMs = 30_000) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const [build] = yield* storage.claimNext({ owner, leaseMs, max: 1 })
    if (build === undefined) return yield* Effect.die("expected a queued build to claim")
    const fence: Fence = { owner, attempt: build.attempt }
    return { build, fence }
  })

const isBuild = Schema.is(Build.Build)

/** Every build a storage returns satisfies the schema's invariants. */
export const assertValidBuild = (build: Build.Build): Build.Build => {
  if (!isBuild(build)) {
    throw new Error(`stored build violates the Build schema: ${JSON.stringify(build)}`)
  }
  return build
}

/** The same query, continuing after `row`. */
export const after = <Row, Name extends string>(
  table: Table<Row, Name>,
  query: Query.ListQuery<Name>,
  row: Row
): Query.ListQuery<Name> => ({
  ...query,
  cursor: { direction: "after", values: Query.positionOf(table, query.orderBy, row) }
})
