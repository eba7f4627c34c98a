import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { Access, App, Query, Storage } from "@kiln/core"
import { Clock, Effect } from "effect"
import { afterAll } from "vitest"
import { SqliteStorage } from "../src/index.ts"
import { runScript } from "./fixtures/runScript.ts"

const dir = mkdtempSync(join(tmpdir(), "kiln-sqlite-race-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const filename = join(dir, "race.db")

const builds = 1000

it.live(
  "two processes claiming from one file give each of 1,000 builds to exactly one of them",
  () =>
    Effect.gen(function* () {
      const storage = yield* Storage.Storage
      // Two workspaces, two apps each, so the claims interleave rows of different apps.
      for (const name of ["a", "b"]) {
        const workspace = yield* storage.createWorkspace({ name })
        for (const handle of ["web", "api"]) {
          const app = yield* storage.createApp(Access.all, {
            workspaceId: workspace.id,
            handle,
            name: handle,
            kind: "app",
            build: App.defaultBuildSettings
          })
          const version = yield* storage.createAppVersion(Access.all, {
            appId: app.id,
            source: { type: "git", url: "https://git.example.com/x.git", commitSha: "a".repeat(40) }
          })
          for (let i = 0; i < builds / 4; i++) {
            yield* storage.createBuild(Access.all, {
              appVersionId: version.id,
              trigger: "manual",
              createdBy: null
            })
          }
        }
      }

      // Both start claiming at the same moment, well after both have opened the file.
      const startAt = String((yield* Clock.currentTimeMillis) + 1500)
      const started = yield* Clock.currentTimeMillis
      const [one, two] = yield* Effect.all(
        [
          runScript("./claimer.ts", [filename, "engine-1", startAt]),
          runScript("./claimer.ts", [filename, "engine-2", startAt])
        ],
        { concurrency: 2 }
      )
      const wall = (yield* Clock.currentTimeMillis) - started
      for (const child of [one, two]) {
        expect(child.stderr).toBe("")
        expect(child.code).toBe(0)
      }
      const results = [one, two].map((p) => JSON.parse(p.stdout) as { ids: Array<string>; ms: number })
      const claimed = results.flatMap((r) => r.ids)
      expect(claimed.length).toBe(builds)
      expect(new Set(claimed).size).toBe(builds)

      const { rows: stored } = yield* storage.listBuilds(Access.all, Query.first(builds + 1))
      expect(stored.length).toBe(builds)
      expect(stored.every((b) => b.phase === "initializing" && b.attempt === 1)).toBe(true)
      const owners = new Map(results.flatMap((r, i) => r.ids.map((id) => [id, `engine-${i + 1}`] as const)))
      expect(stored.every((b) => b.owner === owners.get(b.id))).toBe(true)
      console.info(
        `two-process race: engine-1 claimed ${results[0]!.ids.length} in ${results[0]!.ms} ms, ` +
          `engine-2 claimed ${results[1]!.ids.length} in ${results[1]!.ms} ms (${wall} ms wall, with start-up)`
      )
    }).pipe(Effect.provide(SqliteStorage.layer({ filename }))),
  120_000
)
