import { describe, expect } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Access from "../../Access.ts"
import * as Fields from "../../Fields.ts"
import * as Query from "../../Query.ts"
import * as Trigger from "../../Trigger.ts"
import { type MakeStorage, seed, test, unissued } from "./fixtures.ts"

const input = (appId: Trigger.NewTrigger["appId"], name = "main pushes"): Trigger.NewTrigger => ({
  appId,
  name,
  repository: "https://git.example.com/acme/web.git",
  branchIncludes: ["main", "release/*"],
  branchExcludes: ["release/old-*"],
  pathIncludes: [],
  pathExcludes: ["docs/*", "*.md"],
  buildCommand: "npm run build",
  deployCommand: null,
  rootDirectory: "apps/web",
  cachingEnabled: true,
  environment: [
    { name: "NODE_ENV", secret: false },
    { name: "API_TOKEN", secret: true }
  ]
})

/** Triggers: create, read, update, delete (kept, marked), list, the live ones of a workspace, and scope. */
export const triggers = (name: string, make: MakeStorage) =>
  describe(`${name} › storage: triggers`, () => {
    const it = test(make)

    it("stores a trigger with every rule and setting, in its app's workspace", () =>
      Effect.gen(function* () {
        const { storage, workspace, app } = yield* seed()
        const trigger = yield* storage.createTrigger(Access.all, input(app.id))
        expect(Schema.is(Trigger.Trigger)(trigger)).toBe(true)
        expect(trigger).toMatchObject({ ...input(app.id), workspaceId: workspace.id, deletedAt: null })
        expect(yield* storage.getTrigger(Access.all, trigger.id)).toEqual(trigger)
        const missingApp = yield* Effect.flip(storage.createTrigger(Access.all, input(unissued.app)))
        expect(missingApp._tag).toBe("StorageNotFound")
      }))

    it("updates only the fields given, and refuses to update a deleted trigger", () =>
      Effect.gen(function* () {
        const { storage, app } = yield* seed()
        const trigger = yield* storage.createTrigger(Access.all, input(app.id))
        const updated = yield* storage.updateTrigger(Access.all, trigger.id, {
          branchIncludes: ["*"],
          cachingEnabled: false,
          rootDirectory: null
        })
        expect(updated).toEqual({
          ...trigger,
          branchIncludes: ["*"],
          cachingEnabled: false,
          rootDirectory: null,
          updatedAt: updated.updatedAt
        })
        expect(yield* storage.getTrigger(Access.all, trigger.id)).toEqual(updated)
        const deleted = yield* storage.deleteTrigger(Access.all, trigger.id)
        expect(deleted.deletedAt).not.toBeNull()
        // Kept, marked deleted; deleting again keeps the first time.
        expect(yield* storage.getTrigger(Access.all, trigger.id)).toEqual(deleted)
        expect(yield* storage.deleteTrigger(Access.all, trigger.id)).toEqual(deleted)
        const refused = yield* Effect.flip(storage.updateTrigger(Access.all, trigger.id, { name: "again" }))
        expect(refused._tag).toBe("StorageConflict")
      }))

    it("answers the live triggers of a workspace, oldest first, and lists them with the query language", () =>
      Effect.gen(function* () {
        const { storage, workspace, app } = yield* seed()
        const first = yield* storage.createTrigger(Access.all, input(app.id, "first"))
        const second = yield* storage.createTrigger(Access.all, input(app.id, "second"))
        const third = yield* storage.createTrigger(Access.all, input(app.id, "third"))
        yield* storage.deleteTrigger(Access.all, second.id)
        expect((yield* storage.activeTriggers(Access.all, workspace.id)).map((t) => t.name)).toEqual([
          "first",
          "third"
        ])
        const live = yield* Query.fromParams(Fields.triggers, Access.all, {
          filter: JSON.stringify({ deletedAt: { isNull: true } }),
          orderBy: JSON.stringify([{ name: "asc" }])
        })
        expect((yield* storage.listTriggers(Access.all, live)).rows.map((t) => t.id)).toEqual([
          first.id,
          third.id
        ])
        const all = yield* storage.listTriggers(Access.all, Query.first(10))
        expect(all.total).toBe(3)
      }))

    it("hides a workspace's triggers from every other workspace", () =>
      Effect.gen(function* () {
        const { storage, workspace, app } = yield* seed()
        const other = yield* seed({ name: "other", handle: "api" })
        const trigger = yield* storage.createTrigger(Access.all, input(app.id))
        const outside = Access.workspaces([other.workspace.id])
        for (const attempt of [
          storage.getTrigger(outside, trigger.id),
          storage.updateTrigger(outside, trigger.id, { name: "mine" }),
          storage.deleteTrigger(outside, trigger.id),
          storage.createTrigger(outside, input(app.id))
        ]) {
          expect((yield* Effect.flip(attempt))._tag).toBe("StorageNotFound")
        }
        expect(yield* storage.activeTriggers(outside, workspace.id)).toEqual([])
        expect((yield* storage.listTriggers(outside, Query.first(10))).rows).toEqual([])
        expect((yield* storage.getTrigger(Access.all, trigger.id)).name).toBe("main pushes")
      }))
  })
