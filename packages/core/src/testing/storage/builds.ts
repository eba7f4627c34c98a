import { describe, expect } from "@effect/vitest"
import { Effect } from "effect"
import * as Access from "../../Access.ts"
import * as Fields from "../../Fields.ts"
import * as Query from "../../Query.ts"
import { Storage } from "../../Storage.ts"
import { after, assertValidBuild, type MakeStorage, queue, seed, sha, test } from "./fixtures.ts"

/** Build creation: the fields it copies, per-app gapless sequence numbers, idempotency and skipping. */
export const builds = (name: string, make: MakeStorage) =>
  describe(`${name} › storage: build creation and sequence numbers`, () => {
    const it = test(make)

    it("creates a queued build of a ready version with the version's app, workspace and commit", () =>
      Effect.gen(function* () {
        const { storage, workspace, app, version } = yield* seed()
        const build = yield* storage.createBuild(Access.all, {
          appVersionId: version.id,
          trigger: "manual",
          createdBy: "user:ada",
          metadata: { pr: 12, labels: ["a"], nested: { ok: true } }
        })
        assertValidBuild(build)
        expect(build).toMatchObject({
          workspaceId: workspace.id,
          entityId: app.id,
          appVersionId: version.id,
          sequenceNumber: 1,
          phase: "queued",
          outcome: null,
          status: "pending",
          trigger: "manual",
          createdBy: "user:ada",
          commitSha: sha(1),
          attempt: 0,
          metadata: { pr: 12, labels: ["a"], nested: { ok: true } }
        })
        const read = yield* storage.getBuild(Access.all, build.id)
        expect(read).toEqual({ ...build, steps: [] })
      }))

    it("refuses versions that are not ready, and versions the caller cannot see", () =>
      Effect.gen(function* () {
        const { storage, app, version } = yield* seed()
        const pending = yield* storage.createAppVersion(Access.all, {
          appId: app.id,
          source: { type: "archive" }
        })
        const notReady = yield* Effect.flip(
          storage.createBuild(Access.all, { appVersionId: pending.id, trigger: "manual", createdBy: null })
        )
        expect(notReady._tag).toBe("StorageConflict")
        const other = yield* storage.createWorkspace({ name: "other" })
        const hidden = yield* Effect.flip(
          storage.createBuild(Access.workspaces([other.id]), {
            appVersionId: version.id,
            trigger: "manual",
            createdBy: null
          })
        )
        expect(hidden._tag).toBe("StorageNotFound")
        expect((yield* storage.listBuilds(Access.all, Query.first(10))).rows).toEqual([])
      }))

    it("numbers builds per app from 1 without gaps", () =>
      Effect.gen(function* () {
        const { storage, workspace, version } = yield* seed()
        const api = yield* storage.createApp(Access.all, {
          workspaceId: workspace.id,
          handle: "api",
          name: "Api",
          kind: "app",
          build: (yield* storage.getApp(Access.all, version.appId)).build
        })
        const apiVersion = yield* storage.createAppVersion(Access.all, {
          appId: api.id,
          source: { type: "git", url: "https://git.example.com/acme/api.git", commitSha: sha(2) }
        })
        const web = yield* queue(version, 3)
        const apiBuilds = yield* queue(apiVersion, 2)
        expect(web.map((b) => b.sequenceNumber)).toEqual([1, 2, 3])
        expect(apiBuilds.map((b) => b.sequenceNumber)).toEqual([1, 2])
      }))

    it("gives 50 concurrent creations on one app the numbers 1..50, each once", () =>
      Effect.gen(function* () {
        const { version } = yield* seed()
        const created = yield* Effect.all(
          Array.from({ length: 50 }, () => queue(version)),
          { concurrency: "unbounded" }
        )
        const numbers = created.flat().map((b) => b.sequenceNumber)
        expect(numbers.toSorted((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1))
        expect(new Set(created.flat().map((b) => b.id)).size).toBe(50)
      }))

    it("answers each of many concurrent creations on its own: a refused one leaves the others created", () =>
      Effect.gen(function* () {
        const { storage, workspace, app, version } = yield* seed()
        const other = yield* storage.createAppVersion(Access.all, {
          appId: (yield* storage.createApp(Access.all, {
            workspaceId: workspace.id,
            handle: "api",
            name: "Api",
            kind: "app",
            build: app.build
          })).id,
          source: { type: "git", url: "https://git.example.com/acme/api.git", commitSha: sha(2) }
        })
        const pending = yield* storage.createAppVersion(Access.all, {
          appId: app.id,
          source: { type: "archive" }
        })
        const stranger = Access.workspaces([(yield* storage.createWorkspace({ name: "other" })).id])
        const create = (access: Access.Access, appVersionId: typeof version.id, idempotencyKey?: string) =>
          Effect.result(
            storage.createBuild(access, {
              appVersionId,
              trigger: "manual",
              createdBy: "test",
              ...(idempotencyKey === undefined ? {} : { idempotencyKey })
            })
          )
        const calls = Array.from({ length: 24 }, (_, n) =>
          n === 5
            ? create(Access.all, pending.id)
            : n === 11
              ? create(stranger, version.id)
              : n === 17
                ? create(Access.all, version.id, "key-1")
                : create(Access.all, n % 2 === 0 ? version.id : other.id)
        )
        const answers = yield* Effect.all(calls, { concurrency: "unbounded" })
        expect(answers[5]).toMatchObject({ _tag: "Failure", failure: { _tag: "StorageConflict" } })
        expect(answers[11]).toMatchObject({ _tag: "Failure", failure: { _tag: "StorageNotFound" } })
        const created = answers.flatMap((answer) => (answer._tag === "Success" ? [answer.success] : []))
        expect(created).toHaveLength(22)
        for (const [versionId, count] of [
          [version.id, 13],
          [other.id, 9]
        ] as const) {
          const numbers = created.filter((b) => b.appVersionId === versionId).map((b) => b.sequenceNumber)
          expect(numbers.toSorted((a, b) => a - b)).toEqual(Array.from({ length: count }, (_, i) => i + 1))
        }
        for (const build of created)
          expect(yield* storage.getBuild(Access.all, build.id)).toEqual({ ...build, steps: [] })
        const queued = (yield* storage.readEvents(Access.all, {
          after: null,
          types: ["build.queued"],
          limit: 100
        }))
          .map((event) => event.subject)
          .toSorted()
        expect(queued).toEqual(created.map((b) => b.id).toSorted())
      }))

    it("returns the first build for a repeated idempotency key, and refuses the key for another version", () =>
      Effect.gen(function* () {
        const { storage, workspace, app, version } = yield* seed()
        const input = {
          appVersionId: version.id,
          trigger: "manual",
          createdBy: null,
          idempotencyKey: "k-1"
        } as const
        const first = yield* storage.createBuild(Access.all, input)
        const again = yield* storage.createBuild(Access.all, input)
        expect(again).toEqual(first)
        const concurrent = yield* Effect.all(
          Array.from({ length: 10 }, () =>
            storage.createBuild(Access.all, { ...input, idempotencyKey: "k-2" })
          ),
          { concurrency: "unbounded" }
        )
        expect(new Set(concurrent.map((b) => b.id)).size).toBe(1)
        const other = yield* storage.createAppVersion(Access.all, {
          appId: app.id,
          source: { type: "git", url: "https://git.example.com/acme/web.git", commitSha: sha(3) }
        })
        const reused = yield* Effect.flip(
          storage.createBuild(Access.all, { ...input, appVersionId: other.id })
        )
        expect(reused._tag).toBe("StorageConflict")
        const next = yield* storage.createBuild(Access.all, { ...input, idempotencyKey: "k-3" })
        expect(next.sequenceNumber).toBe(3)
        expect(workspace.id).toBe(next.workspaceId)
      }))

    it("returns the first build for a repeated (app, source event)", () =>
      Effect.gen(function* () {
        const { storage, workspace, version } = yield* seed()
        const { event } = yield* storage.recordSourceEvent(Access.all, {
          workspaceId: workspace.id,
          deliveryId: "d-1",
          kind: "push",
          repository: "acme/web",
          branch: "main",
          commitSha: sha(1),
          changedPaths: [],
          author: null,
          message: null
        })
        const input = {
          appVersionId: version.id,
          trigger: "auto",
          createdBy: null,
          sourceEventId: event.id
        } as const
        const first = yield* storage.createBuild(Access.all, input)
        const again = yield* storage.createBuild(Access.all, input)
        expect(again.id).toBe(first.id)
        expect(first.sourceEventId).toBe(event.id)
        expect((yield* storage.listBuilds(Access.all, Query.first(10))).total).toBe(1)
      }))

    it("creates a skipped build stopped at once, with its reason and a sequence number", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        const skipped = yield* storage.createBuild(Access.all, {
          appVersionId: version.id,
          trigger: "auto",
          createdBy: null,
          skipReason: "no changed path matches the trigger"
        })
        assertValidBuild(skipped)
        expect(skipped).toMatchObject({
          phase: "stopped",
          outcome: "skipped",
          status: "skipped",
          skipReason: "no changed path matches the trigger",
          sequenceNumber: 1
        })
        expect(skipped.completedAt).not.toBeNull()
        expect(yield* storage.claimNext({ owner: "engine", leaseMs: 10_000, max: 10 })).toEqual([])
      }))

    it("lists builds newest first, within the caller's workspaces, continuing after a row", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        const mine = yield* queue(version, 4)
        const other = yield* seed({ name: "other" })
        const theirs = yield* queue(other.version, 2)
        const scope = Access.workspaces([version.workspaceId])
        const scoped = yield* storage.listBuilds(scope, Query.first(3))
        expect(scoped.rows.map((b) => b.id)).toEqual([mine[3]!.id, mine[2]!.id, mine[1]!.id])
        expect(scoped).toMatchObject({ total: 4, hasNextPage: true, hasPreviousPage: false })
        const rest = yield* storage.listBuilds(scope, after(Fields.builds, Query.first(3), scoped.rows[2]!))
        expect(rest.rows.map((b) => b.id)).toEqual([mine[0]!.id])
        expect(rest).toMatchObject({ total: 4, hasNextPage: false, hasPreviousPage: true })
        const everything = yield* storage.listBuilds(Access.all, Query.first(10))
        expect(everything.rows.map((b) => b.id)).toEqual([
          theirs[1]!.id,
          theirs[0]!.id,
          ...mine.map((b) => b.id).reverse()
        ])
        everything.rows.forEach(assertValidBuild)
        const hidden = yield* Effect.flip(
          storage.getBuild(Access.workspaces([other.workspace.id]), mine[0]!.id)
        )
        expect(hidden._tag).toBe("StorageNotFound")
        expect(yield* Storage.use((s) => s.getBuild(Access.all, theirs[0]!.id))).toMatchObject({ steps: [] })
      }))
  })
