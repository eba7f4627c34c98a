import { describe, expect } from "@effect/vitest"
import { DateTime, Effect, Option, Schema } from "effect"
import * as Access from "../../Access.ts"
import { ApiToken } from "../../ApiToken.ts"
import * as App from "../../App.ts"
import { AppVersion } from "../../AppVersion.ts"
import * as Fields from "../../Fields.ts"
import * as Query from "../../Query.ts"
import { SourceEvent } from "../../SourceEvent.ts"
import { Storage } from "../../Storage.ts"
import { Workspace } from "../../Workspace.ts"
import { after, type MakeStorage, seed, sha, test, unissued } from "./fixtures.ts"

const hash = (n: number) => n.toString(16).padStart(64, "0")

const event = (workspaceId: Workspace["id"], deliveryId: string) => ({
  workspaceId,
  deliveryId,
  kind: "push" as const,
  repository: "acme/web",
  branch: "main",
  commitSha: sha(7),
  changedPaths: ["src/index.ts"],
  author: "ada",
  message: "fix"
})

/** Workspaces, apps, app versions, source events and tokens: create, read, list, and workspace scope. */
export const entities = (name: string, make: MakeStorage) =>
  describe(`${name} › storage: entities and scope`, () => {
    const it = test(make)

    it("answers a ping, for readiness probes", () => Storage.use((storage) => storage.ping))

    it("creates and reads workspaces; another workspace's scope sees a missing one", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const a = yield* storage.createWorkspace({ name: "a" })
        const b = yield* storage.createWorkspace({ name: "b" })
        expect(Schema.is(Workspace)(a)).toBe(true)
        expect(yield* storage.getWorkspace(Access.all, a.id)).toEqual(a)
        expect(yield* storage.getWorkspace(Access.workspaces([a.id]), a.id)).toEqual(a)
        const hidden = yield* Effect.flip(storage.getWorkspace(Access.workspaces([b.id]), a.id))
        const missing = yield* Effect.flip(storage.getWorkspace(Access.all, unissued.workspace))
        // Storage's own tag, apart from an API's `NotFound`, carrying what was asked for.
        expect(hidden).toMatchObject({ _tag: "StorageNotFound", entity: "workspace", id: a.id })
        expect(missing).toMatchObject({
          _tag: "StorageNotFound",
          entity: "workspace",
          id: unissued.workspace
        })
        expect(
          (yield* storage.listWorkspaces(Access.workspaces([b.id]), Query.first(10))).rows.map((w) => w.id)
        ).toEqual([b.id])
      }))

    it("lists newest first and continues after a row", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const created = yield* Effect.forEach(["1", "2", "3", "4", "5"], (n) =>
          storage.createWorkspace({ name: n })
        )
        const first = yield* storage.listWorkspaces(Access.all, Query.first(2))
        expect(first.rows.map((w) => w.name)).toEqual(["5", "4"])
        const second = yield* storage.listWorkspaces(
          Access.all,
          after(Fields.workspaces, Query.first(10), first.rows[1]!)
        )
        expect(second.rows.map((w) => w.name)).toEqual(["3", "2", "1"])
        expect(created.length).toBe(5)
      }))

    it("keeps app handles unique per workspace and apps inside their workspace", () =>
      Effect.gen(function* () {
        const { storage, workspace, app } = yield* seed()
        expect(Schema.is(App.App)(app)).toBe(true)
        expect(yield* storage.getApp(Access.all, app.id)).toEqual(app)
        const taken = yield* Effect.flip(
          storage.createApp(Access.all, {
            workspaceId: workspace.id,
            handle: "web",
            name: "Again",
            kind: "app",
            build: App.defaultBuildSettings
          })
        )
        expect(taken._tag).toBe("StorageConflict")
        const other = yield* storage.createWorkspace({ name: "other" })
        const sameHandle = yield* storage.createApp(Access.all, {
          workspaceId: other.id,
          handle: "web",
          name: "Web elsewhere",
          kind: "worker",
          build: { ...App.defaultBuildSettings, strategy: "commands", buildCommand: "make" }
        })
        expect(sameHandle.build.buildCommand).toBe("make")
        const outside = yield* Effect.flip(storage.getApp(Access.workspaces([other.id]), app.id))
        expect(outside._tag).toBe("StorageNotFound")
        const intoHidden = yield* Effect.flip(
          storage.createApp(Access.workspaces([other.id]), {
            workspaceId: workspace.id,
            handle: "api",
            name: "Api",
            kind: "app",
            build: App.defaultBuildSettings
          })
        )
        expect(intoHidden._tag).toBe("StorageNotFound")
        const listed = yield* storage.listApps(Access.workspaces([other.id]), Query.first(10))
        expect(listed.rows.map((a) => a.id)).toEqual([sameHandle.id])
      }))

    it("creates versions ready from a commit, pending from a ref or an archive, and resolves each once", () =>
      Effect.gen(function* () {
        const { storage, app, version } = yield* seed()
        expect(version.status).toBe("ready")
        expect(version.commitSha).toBe(sha(1))
        expect(Schema.is(AppVersion)(version)).toBe(true)

        const byRef = yield* storage.createAppVersion(Access.all, {
          appId: app.id,
          source: { type: "git", url: "https://git.example.com/acme/web.git", ref: "main" }
        })
        expect(byRef.status).toBe("pending")
        expect(byRef.commitSha).toBeNull()
        const resolved = yield* storage.resolveAppVersion(Access.all, byRef.id, {
          status: "ready",
          commitSha: sha(2),
          author: "ada",
          message: "initial"
        })
        expect(resolved).toMatchObject({
          status: "ready",
          commitSha: sha(2),
          source: { author: "ada", ref: "main" }
        })
        expect(Schema.is(AppVersion)(resolved)).toBe(true)
        const again = yield* Effect.flip(
          storage.resolveAppVersion(Access.all, byRef.id, { status: "failed", error: "x" })
        )
        expect(again._tag).toBe("StorageConflict")
        expect(yield* storage.getAppVersion(Access.all, byRef.id)).toEqual(resolved)

        const archive = yield* storage.createAppVersion(Access.all, {
          appId: app.id,
          source: { type: "archive" }
        })
        expect(archive).toMatchObject({ status: "pending", source: { type: "archive", sizeBytes: null } })
        const uploaded = yield* storage.resolveAppVersion(Access.all, archive.id, {
          status: "ready",
          commitSha: hash(9),
          sizeBytes: 1234
        })
        expect(uploaded).toMatchObject({ status: "ready", commitSha: hash(9), source: { sizeBytes: 1234 } })

        const broken = yield* storage.createAppVersion(Access.all, {
          appId: app.id,
          source: { type: "archive" }
        })
        const failed = yield* storage.resolveAppVersion(Access.all, broken.id, {
          status: "failed",
          error: "not gzip"
        })
        expect(failed).toMatchObject({ status: "failed", error: "not gzip", commitSha: null })
        expect(Schema.is(AppVersion)(failed)).toBe(true)

        const listed = yield* storage.listAppVersions(Access.all, Query.first(10))
        expect(listed.rows.map((v) => v.id)).toEqual([broken.id, archive.id, byRef.id, version.id])
      }))

    it("hides versions, and the apps they belong to, from other workspaces", () =>
      Effect.gen(function* () {
        const { storage, app, version } = yield* seed()
        const other = yield* storage.createWorkspace({ name: "other" })
        const scope = Access.workspaces([other.id])
        expect((yield* Effect.flip(storage.getAppVersion(scope, version.id)))._tag).toBe("StorageNotFound")
        expect(
          (yield* Effect.flip(
            storage.createAppVersion(scope, { appId: app.id, source: { type: "archive" } })
          ))._tag
        ).toBe("StorageNotFound")
        expect(
          (yield* Effect.flip(storage.resolveAppVersion(scope, version.id, { status: "failed", error: "x" })))
            ._tag
        ).toBe("StorageNotFound")
        expect((yield* storage.listAppVersions(scope, Query.first(10))).rows).toEqual([])
      }))

    it("stores a source event once per delivery in a workspace", () =>
      Effect.gen(function* () {
        const { storage, workspace } = yield* seed()
        const first = yield* storage.recordSourceEvent(Access.all, event(workspace.id, "delivery-1"))
        expect(first.created).toBe(true)
        expect(Schema.is(SourceEvent)(first.event)).toBe(true)
        const redelivered = yield* storage.recordSourceEvent(Access.all, {
          ...event(workspace.id, "delivery-1"),
          message: "changed"
        })
        expect(redelivered).toEqual({ event: first.event, created: false })
        const other = yield* storage.createWorkspace({ name: "other" })
        const elsewhere = yield* storage.recordSourceEvent(Access.all, event(other.id, "delivery-1"))
        expect(elsewhere.created).toBe(true)
        expect(elsewhere.event.id).not.toBe(first.event.id)
        expect(yield* storage.getSourceEvent(Access.all, first.event.id)).toEqual(first.event)
        expect(
          (yield* Effect.flip(storage.getSourceEvent(Access.workspaces([other.id]), first.event.id)))._tag
        ).toBe("StorageNotFound")
        const hidden = yield* Effect.flip(
          storage.recordSourceEvent(Access.workspaces([other.id]), event(workspace.id, "delivery-2"))
        )
        expect(hidden._tag).toBe("StorageNotFound")
      }))

    it("stores tokens by hash, finds them by hash and keeps the first revocation", () =>
      Effect.gen(function* () {
        const { storage, workspace } = yield* seed()
        const token = yield* storage.createToken({
          name: "ci",
          workspaceIds: [workspace.id],
          role: "write",
          tokenHash: hash(1),
          expiresAt: null
        })
        expect(Schema.is(ApiToken)(token)).toBe(true)
        expect(Object.values(token)).not.toContain(hash(1))
        expect(yield* storage.findTokenByHash(hash(1))).toEqual(Option.some(token))
        expect(Option.isNone(yield* storage.findTokenByHash(hash(2)))).toBe(true)
        const revoked = yield* storage.revokeToken(Access.workspaces([workspace.id]), token.id)
        expect(revoked.revokedAt).not.toBeNull()
        yield* Effect.sleep("5 millis")
        const again = yield* storage.revokeToken(Access.all, token.id)
        expect(DateTime.toEpochMillis(again.revokedAt!)).toBe(DateTime.toEpochMillis(revoked.revokedAt!))
        expect(yield* storage.findTokenByHash(hash(1))).toEqual(Option.some(again))
      }))

    it("shows a token only to callers that hold all of its workspaces", () =>
      Effect.gen(function* () {
        const { storage, workspace } = yield* seed()
        const other = yield* storage.createWorkspace({ name: "other" })
        const mine = yield* storage.createToken({
          name: "mine",
          workspaceIds: [workspace.id],
          role: "read",
          tokenHash: hash(1),
          expiresAt: null
        })
        const both = yield* storage.createToken({
          name: "both",
          workspaceIds: [workspace.id, other.id],
          role: "admin",
          tokenHash: hash(2),
          expiresAt: null
        })
        const everything = yield* storage.createToken({
          name: "root",
          workspaceIds: "*",
          role: "admin",
          tokenHash: hash(3),
          expiresAt: null
        })
        const scope = Access.workspaces([workspace.id])
        expect((yield* storage.listTokens(scope, Query.first(10))).rows.map((t) => t.id)).toEqual([mine.id])
        expect((yield* storage.listTokens(Access.all, Query.first(10))).rows.map((t) => t.id)).toEqual([
          everything.id,
          both.id,
          mine.id
        ])
        expect((yield* Effect.flip(storage.getToken(scope, both.id)))._tag).toBe("StorageNotFound")
        expect((yield* Effect.flip(storage.revokeToken(scope, everything.id)))._tag).toBe("StorageNotFound")
        expect(yield* storage.getToken(Access.workspaces([workspace.id, other.id]), both.id)).toEqual(both)
        const unknown = yield* Effect.flip(
          storage.createToken({
            name: "ghost",
            workspaceIds: [unissued.workspace],
            role: "read",
            tokenHash: hash(4),
            expiresAt: null
          })
        )
        expect(unknown._tag).toBe("StorageNotFound")
      }))
  })
