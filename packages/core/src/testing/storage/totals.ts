import { describe, expect } from "@effect/vitest"
import { Clock, DateTime, Effect } from "effect"
import * as Access from "../../Access.ts"
import * as Fields from "../../Fields.ts"
import * as Query from "../../Query.ts"
import { type MakeStorage, seed, test } from "./fixtures.ts"

const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))

/**
 * Exact totals: a list's `pageInfo.total` over the shorthand filters (which a SQL storage may sum from
 * counts it keeps) equals the count of the same rows taken another way (with a filter no count covers),
 * after builds are created, claimed, started, finished, cancelled, given back and deleted.
 */
export const totals = (name: string, make: MakeStorage) =>
  describe(`${name} › storage: exact totals`, () => {
    const it = test(make)

    it("keeps exact totals for the shorthand filters through every kind of change", () =>
      Effect.gen(function* () {
        const { storage, workspace, app: web, version: webVersion } = yield* seed()
        const api = yield* storage.createApp(Access.all, {
          workspaceId: workspace.id,
          handle: "api",
          name: "API",
          kind: "app",
          build: web.build
        })
        const apiVersion = yield* storage.createAppVersion(Access.all, {
          appId: api.id,
          source: { type: "git", url: "https://git.example.com/acme/api.git", commitSha: "b".repeat(40) }
        })
        const create = (
          versionId: typeof webVersion.id,
          trigger: "manual" | "auto",
          createdBy: string | null
        ) => storage.createBuild(Access.all, { appVersionId: versionId, trigger, createdBy })
        for (let i = 0; i < 6; i++) yield* create(webVersion.id, "manual", "test")
        for (let i = 0; i < 3; i++) yield* create(apiVersion.id, "auto", "ann")
        yield* create(webVersion.id, "auto", null)
        const other = yield* seed({ name: "other" })
        yield* create(other.version.id, "manual", "test")

        const claimed = yield* storage.claimNext({ owner: "engine", leaseMs: 60_000, max: 5 })
        expect(claimed.length).toBe(5)
        const fence = (i: number) => ({ owner: "engine", attempt: claimed[i]!.attempt })
        yield* storage.transition(claimed[0]!.id, { _tag: "Started", at: yield* now, ...fence(0) })
        yield* storage.transition(claimed[0]!.id, {
          _tag: "Succeeded",
          at: yield* now,
          ...fence(0),
          imageTag: null,
          imageDigest: null
        })
        yield* storage.transition(claimed[1]!.id, {
          _tag: "Failed",
          at: yield* now,
          ...fence(1),
          error: "no"
        })
        yield* storage.transition(claimed[2]!.id, { _tag: "Release", at: yield* now, ...fence(2) })
        const queued = yield* storage.listBuilds(Access.all, {
          ...Query.first(100),
          filter: { _tag: "Compare", field: "phase", op: "eq", value: "queued" }
        })
        yield* storage.requestCancel(Access.all, queued.rows[0]!.id, "not needed")
        // The app's stopped builds but its newest one go.
        const deleted = yield* storage.deleteBuilds({
          appId: web.id,
          keep: 1,
          createdBefore: null,
          limit: 100
        })
        expect(deleted.length).toBeGreaterThan(0)

        const cases: ReadonlyArray<Query.Params> = [
          {},
          { workspace_id: workspace.id },
          { app_id: web.id },
          { app_id: api.id },
          ...["pending", "running", "completed", "failed", "cancelled", "skipped"].map((status) => ({
            status
          })),
          { trigger: "manual" },
          { trigger: "auto" },
          { created_by: "test" },
          { created_by: "ann" },
          { app_id: web.id, status: "pending" },
          { workspace_id: workspace.id, trigger: "auto", created_by: "ann" },
          { filter: '{"status":{"in":["completed","failed","cancelled"]}}' }
        ]
        const totalOf = (access: Access.Access, params: Query.Params) =>
          Effect.flatMap(Query.fromParams(Fields.builds, access, params), (query) =>
            Effect.map(storage.listBuilds(access, query), (page) => page.total)
          )
        // The same rows counted another way: ANDed with a filter on the id, which no count covers.
        const countedOf = (access: Access.Access, params: Query.Params) => {
          const byId = { id: { startsWith: "bld_" } }
          const filter =
            params.filter === undefined ? byId : { and: [JSON.parse(params.filter) as object, byId] }
          return totalOf(access, { ...params, filter: JSON.stringify(filter) })
        }
        for (const access of [Access.all, Access.workspaces([workspace.id])]) {
          for (const params of cases) {
            const total = yield* totalOf(access, params)
            expect(total, JSON.stringify(params)).toBe(yield* countedOf(access, params))
          }
        }
        // And the figures themselves, for a few.
        expect(yield* totalOf(Access.all, {})).toBe(11 - deleted.length)
        expect(
          yield* totalOf(Access.workspaces([workspace.id]), { trigger: "auto", created_by: "ann" })
        ).toBe(3)
        expect(yield* totalOf(Access.all, { status: "running" })).toBe(2)
        expect(yield* totalOf(Access.workspaces([other.workspace.id]), {})).toBe(1)
      }))
  })
