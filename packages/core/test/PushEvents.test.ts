import { describe, expect, it } from "@effect/vitest"
import { Access, App, type Id, PushEvents, Query, Storage, Trigger } from "@kiln/core"
import { Effect } from "effect"

const repository = "https://git.example.com/acme/web.git"
const commit = "c".repeat(40)

/** A workspace with two apps, `web` and `docs`, and no triggers yet. */
const workspace = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  const workspace = yield* storage.createWorkspace({ name: "acme" })
  const app = (handle: string) =>
    storage.createApp(Access.all, {
      workspaceId: workspace.id,
      handle,
      name: handle,
      kind: "app",
      build: App.defaultBuildSettings
    })
  return { storage, workspace, web: yield* app("web"), docs: yield* app("docs") }
})

const rules = (appId: Id.AppId, overrides: Trigger.TriggerPatch = {}): Trigger.NewTrigger =>
  Trigger.input(appId, "pushes", {
    repository,
    branchIncludes: ["main"],
    buildCommand: "npm run build",
    deployCommand: "npm run deploy",
    environment: [{ name: "TOKEN", secret: true }],
    ...overrides
  })

const push = (workspaceId: Id.WorkspaceId, overrides: Partial<PushEvents.Push> = {}): PushEvents.Push => ({
  workspaceId,
  deliveryId: "delivery-1",
  repository,
  branch: "main",
  commitSha: commit,
  changedPaths: ["src/index.ts"],
  author: "ada",
  message: "fix the thing",
  ...overrides
})

const counts = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  return {
    builds: (yield* storage.listBuilds(Access.all, Query.first(100))).total,
    versions: (yield* storage.listAppVersions(Access.all, Query.first(100))).total
  }
})

describe("PushEvents.receive", () => {
  it.effect("builds the pushed commit for a matching trigger, recording the push and the trigger", () =>
    Effect.gen(function* () {
      const { storage, workspace: ws, web } = yield* workspace
      const trigger = yield* storage.createTrigger(Access.all, rules(web.id))
      const received = yield* PushEvents.receive(Access.all, push(ws.id))
      expect(received.redelivered).toBe(false)
      expect(received.builds.length).toBe(1)
      const [build] = received.builds
      expect(build).toMatchObject({
        entityId: web.id,
        status: "pending",
        trigger: "auto",
        createdBy: "ada",
        sourceEventId: received.event.id,
        commitSha: commit
      })
      expect(build!.triggerMetadata).toEqual({
        triggerId: trigger.id,
        triggerName: "pushes",
        source: "push",
        repository,
        branch: "main",
        commitSha: commit,
        commitMessage: "fix the thing",
        author: "ada",
        buildCommand: "npm run build",
        deployCommand: "npm run deploy",
        rootDirectory: null,
        cachingEnabled: false,
        environmentVariables: ["TOKEN"],
        tokenId: null,
        tokenName: null
      })
      const version = yield* storage.getAppVersion(Access.all, build!.appVersionId)
      expect(version).toMatchObject({
        status: "ready",
        commitSha: commit,
        source: { type: "git", url: repository }
      })
      expect(received.event).toMatchObject({
        deliveryId: "delivery-1",
        branch: "main",
        changedPaths: ["src/index.ts"]
      })
    }).pipe(Effect.provide(Storage.layerMemory()))
  )

  it.effect("creates nothing for a redelivery, however often and however concurrently it comes", () =>
    Effect.gen(function* () {
      const { storage, workspace: ws, web, docs } = yield* workspace
      yield* storage.createTrigger(Access.all, rules(web.id))
      yield* storage.createTrigger(Access.all, rules(docs.id))
      const first = yield* PushEvents.receive(Access.all, push(ws.id))
      const before = yield* counts
      expect(before).toEqual({ builds: 2, versions: 2 })
      const again = yield* Effect.all(
        Array.from({ length: 8 }, () => PushEvents.receive(Access.all, push(ws.id))),
        { concurrency: "unbounded" }
      )
      for (const received of again) {
        expect(received.redelivered).toBe(true)
        expect(received.event.id).toBe(first.event.id)
        expect(received.builds.map((b) => b.id).sort()).toEqual(first.builds.map((b) => b.id).sort())
      }
      expect(yield* counts).toEqual(before)
      // Another delivery of the same commit is another event, and builds again.
      yield* PushEvents.receive(Access.all, push(ws.id, { deliveryId: "delivery-2" }))
      expect((yield* counts).builds).toBe(4)
    }).pipe(Effect.provide(Storage.layerMemory()))
  )

  it.effect("records a skipped build when the paths are excluded, and nothing when the branch is", () =>
    Effect.gen(function* () {
      const { storage, workspace: ws, web, docs } = yield* workspace
      yield* storage.createTrigger(Access.all, rules(web.id, { pathExcludes: ["docs/*", "*.md"] }))
      const docsTrigger = yield* storage.createTrigger(
        Access.all,
        rules(docs.id, { branchIncludes: ["*"], branchExcludes: ["main"] })
      )
      const received = yield* PushEvents.receive(
        Access.all,
        push(ws.id, { changedPaths: ["README.md", "docs/guide.md"] })
      )
      expect(received.builds.map((b) => [b.entityId, b.status, b.outcome])).toEqual([
        [web.id, "skipped", "skipped"]
      ])
      expect(received.builds[0]!.skipReason).toContain("excluded")
      expect(received.ignored).toEqual([
        { triggerId: docsTrigger.id, reason: 'branch main is excluded by "main"' }
      ])
    }).pipe(Effect.provide(Storage.layerMemory()))
  )

  it.effect("gives an app one build per push: a trigger that builds beats an older one that skips", () =>
    Effect.gen(function* () {
      const { storage, workspace: ws, web } = yield* workspace
      const skipping = yield* storage.createTrigger(
        Access.all,
        rules(web.id, { name: "code only", pathIncludes: ["src/*"] })
      )
      const building = yield* storage.createTrigger(Access.all, rules(web.id, { name: "everything" }))
      const received = yield* PushEvents.receive(Access.all, push(ws.id, { changedPaths: ["docs/a.md"] }))
      expect(received.builds.length).toBe(1)
      expect(received.builds[0]).toMatchObject({
        status: "pending",
        triggerMetadata: { triggerId: building.id }
      })
      expect(received.ignored.map((i) => i.triggerId)).toEqual([skipping.id])
      expect((yield* counts).versions).toBe(1)
    }).pipe(Effect.provide(Storage.layerMemory()))
  )

  it.effect(
    "builds nothing for a deleted trigger, another repository, or a push that deletes the branch",
    () =>
      Effect.gen(function* () {
        const { storage, workspace: ws, web, docs } = yield* workspace
        const deleted = yield* storage.createTrigger(Access.all, rules(web.id))
        yield* storage.deleteTrigger(Access.all, deleted.id)
        yield* storage.createTrigger(
          Access.all,
          rules(docs.id, { repository: "https://git.example.com/acme/docs.git" })
        )
        const elsewhere = yield* PushEvents.receive(Access.all, push(ws.id))
        expect(elsewhere.builds).toEqual([])
        expect(elsewhere.ignored.map((i) => i.reason)).toEqual([
          `the push is to ${repository}, not https://git.example.com/acme/docs.git`
        ])
        yield* storage.createTrigger(Access.all, rules(web.id))
        const deletion = yield* PushEvents.receive(
          Access.all,
          push(ws.id, { deliveryId: "d2", commitSha: null })
        )
        expect(deletion.builds).toEqual([])
        expect(deletion.ignored.map((i) => i.reason)).toContain("the push names no commit")
        expect(yield* counts).toEqual({ builds: 0, versions: 0 })
      }).pipe(Effect.provide(Storage.layerMemory()))
  )

  it.effect("refuses a push to a workspace outside the caller's scope", () =>
    Effect.gen(function* () {
      const { storage, workspace: ws, web } = yield* workspace
      const other = yield* storage.createWorkspace({ name: "other" })
      yield* storage.createTrigger(Access.all, rules(web.id))
      const refused = yield* Effect.flip(PushEvents.receive(Access.workspaces([other.id]), push(ws.id)))
      expect(refused._tag).toBe("StorageNotFound")
      expect(yield* counts).toEqual({ builds: 0, versions: 0 })
    }).pipe(Effect.provide(Storage.layerMemory()))
  )
})
