import { describe, expect } from "@effect/vitest"
import { Clock, DateTime, Effect } from "effect"
import * as Access from "../../Access.ts"
import * as App from "../../App.ts"
import type { Build } from "../../Build.ts"
import * as Query from "../../Query.ts"
import { Storage } from "../../Storage.ts"
import { assertValidBuild, type MakeStorage, queue, seed, sha, test } from "./fixtures.ts"

const finish = (build: Build) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const at = DateTime.makeUnsafe(yield* Clock.currentTimeMillis)
    return yield* storage.transition(build.id, {
      _tag: "Succeeded",
      at,
      owner: build.owner!,
      attempt: build.attempt,
      imageTag: null,
      imageDigest: null
    })
  })

/** Claiming: oldest first, at most `max`, each build once under concurrency, and the caps. */
export const claims = (name: string, make: MakeStorage) =>
  describe(`${name} › storage: claims and limits`, () => {
    const it = test(make)

    it("claims the oldest queued builds first, at most max, with a lease", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        const queued = yield* queue(version, 5)
        const before = yield* Clock.currentTimeMillis
        const claimed = yield* storage.claimNext({ owner: "engine-a", leaseMs: 60_000, max: 3 })
        expect(claimed.map((b) => b.id)).toEqual(queued.slice(0, 3).map((b) => b.id))
        for (const build of claimed) {
          assertValidBuild(build)
          expect(build).toMatchObject({ phase: "initializing", owner: "engine-a", attempt: 1 })
          const lease = DateTime.toEpochMillis(build.leaseExpiresAt!)
          expect(lease).toBeGreaterThanOrEqual(before + 59_000)
          expect(lease).toBeLessThanOrEqual(before + 61_000 + 5_000)
        }
        const rest = yield* storage.claimNext({ owner: "engine-b", leaseMs: 60_000, max: 10 })
        expect(rest.map((b) => b.id)).toEqual(queued.slice(3).map((b) => b.id))
        expect(yield* storage.claimNext({ owner: "engine-c", leaseMs: 60_000, max: 10 })).toEqual([])
        expect(yield* storage.claimNext({ owner: "engine-c", leaseMs: 60_000, max: 0 })).toEqual([])
      }))

    it("orders claims across apps and workspaces by creation time", () =>
      Effect.gen(function* () {
        const a = yield* seed({ name: "a" })
        const b = yield* seed({ name: "b" })
        const order = [
          ...(yield* queue(b.version)),
          ...(yield* queue(a.version)),
          ...(yield* queue(b.version)),
          ...(yield* queue(a.version))
        ]
        const claimed = yield* a.storage.claimNext({ owner: "engine", leaseMs: 60_000, max: 10 })
        expect(claimed.map((x) => x.id)).toEqual(order.map((x) => x.id))
      }))

    it(
      "gives each of 500 builds to exactly one of 16 racing claimers",
      () =>
        Effect.gen(function* () {
          const { storage, version } = yield* seed()
          yield* queue(version, 500)
          const claimer = (n: number) =>
            Effect.gen(function* () {
              const mine: Array<string> = []
              while (true) {
                const batch = yield* storage.claimNext({
                  owner: `engine-${n}`,
                  leaseMs: 60_000,
                  max: 1 + (n % 4)
                })
                if (batch.length === 0) return mine
                for (const build of batch) mine.push(build.id)
              }
            })
          const results = yield* Effect.all(
            Array.from({ length: 16 }, (_, n) => claimer(n)),
            { concurrency: "unbounded" }
          )
          const all = results.flat()
          expect(all.length).toBe(500)
          expect(new Set(all).size).toBe(500)
          const stored = yield* storage.listBuilds(Access.all, Query.first(1000))
          expect(stored.rows.every((b) => b.phase === "initializing" && b.attempt === 1)).toBe(true)
        }),
      { timeout: 120_000 }
    )

    it("holds the per-app cap, counting builds already running, and frees a slot when one stops", () =>
      Effect.gen(function* () {
        const { storage, version, workspace } = yield* seed()
        const other = yield* storage.createApp(Access.all, {
          workspaceId: workspace.id,
          handle: "api",
          name: "Api",
          kind: "app",
          build: App.defaultBuildSettings
        })
        const otherVersion = yield* storage.createAppVersion(Access.all, {
          appId: other.id,
          source: { type: "git", url: "https://git.example.com/acme/api.git", commitSha: sha(2) }
        })
        yield* queue(version, 4)
        const api = yield* queue(otherVersion, 1)
        const limits = { perApp: 2 }
        const first = yield* storage.claimNext({ owner: "engine", leaseMs: 60_000, max: 10, limits })
        expect(first.filter((b) => b.entityId === version.appId).length).toBe(2)
        expect(first.filter((b) => b.entityId === other.id).map((b) => b.id)).toEqual([api[0]!.id])
        expect(yield* storage.claimNext({ owner: "engine-2", leaseMs: 60_000, max: 10, limits })).toEqual([])
        yield* finish(first[0]!)
        const next = yield* storage.claimNext({ owner: "engine-2", leaseMs: 60_000, max: 10, limits })
        expect(next.length).toBe(1)
        expect(next[0]!.entityId).toBe(version.appId)
      }))

    it("holds the per-workspace cap across its apps", () =>
      Effect.gen(function* () {
        const a = yield* seed({ name: "a" })
        const b = yield* seed({ name: "b" })
        yield* queue(a.version, 3)
        yield* queue(b.version, 3)
        const limits = { perWorkspace: 1 }
        const claimed = yield* a.storage.claimNext({ owner: "engine", leaseMs: 60_000, max: 10, limits })
        expect(claimed.map((x) => x.workspaceId).toSorted()).toEqual(
          [a.workspace.id, b.workspace.id].toSorted()
        )
        expect(yield* a.storage.claimNext({ owner: "engine", leaseMs: 60_000, max: 10, limits })).toEqual([])
        const unlimited = yield* a.storage.claimNext({ owner: "engine", leaseMs: 60_000, max: 10 })
        expect(unlimited.length).toBe(4)
      }))

    it("never claims a stopped build", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        const [cancelled, live] = yield* queue(version, 2)
        yield* storage.requestCancel(Access.all, cancelled!.id, null)
        yield* storage.createBuild(Access.all, {
          appVersionId: version.id,
          trigger: "auto",
          createdBy: null,
          skipReason: "excluded"
        })
        const claimed = yield* storage.claimNext({ owner: "engine", leaseMs: 60_000, max: 10 })
        expect(claimed.map((b) => b.id)).toEqual([live!.id])
      }))
  })
