import { describe, expect, it } from "@effect/vitest"
import { Access, type Build, Engine, Query, Retention, Runner, SourceStore, Storage } from "@kiln/core"
import { Builds } from "@kiln/core/testing"
import { Effect, Layer, Result } from "effect"
import { imagesToRemove } from "../src/internal/engine/retention.ts"
import { appWith, dir } from "./engineFixtures.ts"
import { queuedBuild } from "./fixtures.ts"

describe("Retention settings", () => {
  it("resolves each field from the app's override, then the workspace's, then the server's", () => {
    const settings: Retention.Settings = {
      logs: "30 days",
      keepBuilds: 100,
      keepImages: 3,
      workspaces: { wsp_a: { keepBuilds: 10, logs: "1 day" } },
      apps: { app_x: { keepBuilds: 500 } }
    }
    const day = 24 * 3600 * 1000
    expect(Retention.resolve(settings, "wsp_a", "app_x")).toEqual({
      logsMs: day,
      keepBuilds: 500,
      buildsMs: null,
      keepImages: 3
    })
    expect(Retention.resolve(settings, "wsp_a", "app_y")).toMatchObject({ keepBuilds: 10, logsMs: day })
    expect(Retention.resolve(settings, "wsp_b", "app_y")).toMatchObject({ keepBuilds: 100, logsMs: 30 * day })
    expect(Retention.resolve({}, "wsp_b", "app_y")).toEqual({
      logsMs: null,
      keepBuilds: null,
      buildsMs: null,
      keepImages: null
    })
  })

  it("reads settings from JSON and names what is wrong", () => {
    expect(Retention.fromJson('{"logs":"7 days","keepBuilds":50,"every":60000}')).toEqual(
      Result.succeed({ logs: "7 days", keepBuilds: 50, every: 60000 })
    )
    const fault = (text: string) => {
      const read = Retention.fromJson(text)
      return Result.isFailure(read) ? read.failure : "accepted"
    }
    expect(fault('{"logs":"soon"}')).toMatch(/invalid retention settings: .*positive duration/s)
    expect(fault('{"keepBuilds":0}')).toMatch(/invalid retention settings/)
    expect(fault('{"keepBuild":5}')).toMatch(/keepBuild/)
    expect(fault('{"apps":{"app_x":{"logs":-5}}}')).toMatch(/positive duration/)
    expect(fault("{not json")).toMatch(/invalid retention settings/)
    expect(Retention.isEmpty({ every: "1 hour" })).toBe(true)
    expect(Retention.isEmpty({ apps: { app_x: { keepImages: 1 } } })).toBe(false)
  })
})

describe("Retention of images", () => {
  const build = (n: number, changes: Partial<Build.Build> = {}): Build.Build => ({
    ...queuedBuild(n),
    phase: "stopped",
    status: "completed",
    outcome: "success",
    ...changes
  })
  const image = (n: number) => ({ id: `sha256:${n}`, references: [`web:${n}`], buildId: queuedBuild(n).id })
  const builds = (list: ReadonlyArray<Build.Build>) => new Map(list.map((b) => [b.id as string, b]))

  it("keeps the newest K successful images of each app and removes the rest, pinned ones aside", () => {
    const all = [1, 2, 3, 4, 5].map(image)
    const known = builds([build(1), build(2), build(3, { outcome: "failure" }), build(4), build(5)])
    const removed = imagesToRemove(all, known, () => 2, new Set(["web:1"]))
    // 5 and 4 are the newest successful; 3 failed; 1 is pinned by reference.
    expect(removed.map((i) => i.id)).toEqual(["sha256:2", "sha256:3"])
    expect(imagesToRemove(all, known, () => 2, new Set(["sha256:2"])).map((i) => i.id)).toEqual([
      "sha256:1",
      "sha256:3"
    ])
  })

  it("removes an image whose build was deleted, and keeps every image of an app with no image policy", () => {
    const all = [1, 2].map(image)
    expect(imagesToRemove(all, builds([build(2)]), () => 5, new Set()).map((i) => i.id)).toEqual(["sha256:1"])
    expect(imagesToRemove(all, builds([build(1), build(2)]), () => null, new Set())).toEqual([])
    // A build that has not stopped keeps its image, whatever the count.
    const running = builds([build(1, { phase: "running", status: "running", outcome: null }), build(2)])
    expect(imagesToRemove(all, running, () => 0, new Set()).map((i) => i.id)).toEqual(["sha256:2"])
  })
})

/** An engine with the retention settings; `before` runs on its storage before the engine starts. */
const engineWith = (
  retention: Retention.Options,
  before: Layer.Layer<never, unknown, Storage.Storage> = Layer.empty
) =>
  Engine.layer({ owner: "retainer", pollIntervalMs: 50, retention }).pipe(
    Layer.provideMerge(
      Layer.mergeAll(Runner.layerTest, SourceStore.layer({ directory: dir }), before).pipe(
        Layer.provideMerge(Storage.layerMemory())
      )
    )
  )

describe("Retention in the engine", () => {
  it.live("deletes stopped builds beyond the policy's count on its schedule, with build.deleted events", () =>
    Effect.gen(function* () {
      const { storage, version } = yield* appWith("echo built")
      const builds = yield* Effect.forEach(Array.from({ length: 5 }), () =>
        storage.createBuild(Access.all, { appVersionId: version.id, trigger: "manual", createdBy: "test" })
      )
      // Only the newest two are waited for: the others may be deleted as soon as they stop, before a
      // slow test looks at them (CI once failed here on a build retention had already deleted).
      for (const build of builds.slice(3)) yield* Builds.stopped(build.id)
      const left = yield* Effect.gen(function* () {
        while (true) {
          const listed = yield* storage.listBuilds(Access.all, Query.first(10))
          if (listed.rows.length <= 2) return listed.rows
          yield* Effect.sleep("50 millis")
        }
      }).pipe(Effect.timeout("10 seconds"))
      expect(left.map((build) => build.sequenceNumber).sort()).toEqual([4, 5])
      const events = yield* storage.readEvents(Access.all, {
        after: null,
        types: ["build.deleted"],
        limit: 10
      })
      expect(events.map((event) => event.subject)).toEqual(builds.slice(0, 3).map((build) => build.id))
      // The version stays: it is the app's newest, and builds 4 and 5 still name it.
      expect((yield* storage.getAppVersion(Access.all, version.id)).id).toBe(version.id)
    }).pipe(Effect.provide(engineWith({ keepBuilds: 2, every: "100 millis" })))
  )

  it.live("expires logs after the policy's age, and the build stays", () =>
    Effect.gen(function* () {
      const { storage, version } = yield* appWith("echo built")
      const build = yield* storage.createBuild(Access.all, {
        appVersionId: version.id,
        trigger: "manual",
        createdBy: "test"
      })
      yield* Builds.stopped(build.id)
      expect((yield* Builds.logOf(build.id)).length).toBeGreaterThan(0)
      const page = yield* Effect.gen(function* () {
        while (true) {
          const read = yield* storage.readLogs(Access.all, build.id, 0, 100)
          if (read.expiredAt !== null) return read
          yield* Effect.sleep("50 millis")
        }
      }).pipe(Effect.timeout("10 seconds"))
      expect(page.lines).toEqual([])
      expect((yield* storage.getBuild(Access.all, build.id)).outcome).toBe("success")
    }).pipe(Effect.provide(engineWith({ logs: "300 millis", every: "100 millis" })))
  )

  it.live(
    "runs the store's part in one process at a time: another holder of the lease keeps it from running",
    () =>
      Effect.gen(function* () {
        const { storage, version } = yield* appWith("echo built")
        const builds = yield* Effect.forEach(Array.from({ length: 3 }), () =>
          storage.createBuild(Access.all, { appVersionId: version.id, trigger: "manual", createdBy: "test" })
        )
        for (const build of builds) yield* Builds.stopped(build.id)
        yield* Effect.sleep("500 millis")
        expect((yield* storage.listBuilds(Access.all, Query.first(10))).rows).toHaveLength(3)
      }).pipe(
        Effect.provide(
          engineWith(
            { keepBuilds: 1, every: "100 millis" },
            // Another process took the lease before this engine started.
            Layer.effectDiscard(
              Storage.Storage.use((storage) => storage.takeLease("kiln.retention", "elsewhere", 60_000))
            )
          )
        )
      )
  )

  it.live("refuses invalid settings when the engine starts", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(Layer.build(engineWith({ keepBuilds: 0 })).pipe(Effect.scoped))
      expect(String(exit)).toMatch(/invalid retention settings/)
    })
  )
})
