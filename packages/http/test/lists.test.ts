/**
 * Whole lists read from storage a page at a time (`everyRow`, behind the deployments dialect's bare
 * arrays), on real SQLite with pages far smaller than the list: every row once, in the list's order, also
 * when every row has the same creation time and only the id tells them apart.
 */
import { describe, expect, it } from "@effect/vitest"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, App, Fields, Query, Storage } from "@kiln/core"
import { Effect, Stream } from "effect"
import { everyRow } from "../src/internal/lists.ts"

describe("http › whole lists", () => {
  // The test clock stands still: every build has the same createdAt, so pages part between equal times.
  it.effect("reads every row once, newest first, in pages that split equal times", () =>
    Effect.gen(function* () {
      const storage = yield* Storage.Storage
      const workspace = yield* storage.createWorkspace({ name: "lists" })
      const versionOf = (handle: string) =>
        Effect.flatMap(
          storage.createApp(Access.all, {
            workspaceId: workspace.id,
            handle,
            name: handle,
            kind: "deployment",
            build: App.defaultBuildSettings
          }),
          (app) =>
            storage.createAppVersion(Access.all, {
              appId: app.id,
              source: { type: "git", url: "https://example.com/r.git", commitSha: "e".repeat(40) }
            })
        )
      const mine = yield* versionOf("mine")
      const other = yield* versionOf("other")
      // Interleaved with another app's builds, which the list must leave out.
      const created = yield* Effect.forEach(Array.from({ length: 250 }), (_, i) =>
        storage.createBuild(Access.all, {
          appVersionId: (i % 3 === 0 ? other : mine).id,
          trigger: "manual",
          createdBy: null
        })
      )
      const expected = created
        .filter((build) => build.entityId === mine.appId)
        .map((build) => build.id)
        .reverse()
      expect(new Set(created.map((build) => build.createdAt.epochMilliseconds)).size).toBe(1)

      const query = yield* Query.fromParams(Fields.builds, Access.all, {
        app_id: mine.appId
      })
      const pages: Array<number> = []
      const rows = yield* everyRow(Fields.builds, { ...query, limit: 7 }, (q) =>
        Effect.tap(storage.listBuilds(Access.all, q), (page) =>
          Effect.sync(() => pages.push(page.rows.length))
        )
      ).pipe(Stream.runCollect)
      expect(rows.map((build) => build.id)).toEqual(expected)
      // Storage was read in pages of 7, never all at once.
      expect(pages).toEqual([...Array.from({ length: 23 }, () => 7), 5])

      const none = yield* everyRow(
        Fields.builds,
        { ...query, filter: undefined, limit: 7, cursor: undefined },
        (q) => storage.listBuilds(Access.workspaces([]), q)
      ).pipe(Stream.runCollect)
      expect(none).toEqual([])
    }).pipe(Effect.provide(SqliteStorage.layer({ filename: ":memory:" })))
  )
})
