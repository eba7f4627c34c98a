import { describe, expect } from "@effect/vitest"
import { Clock, DateTime, Effect, Exit } from "effect"
import * as Access from "../../Access.ts"
import type { AppVersion } from "../../AppVersion.ts"
import type { Build } from "../../Build.ts"
import * as Query from "../../Query.ts"
import { Storage } from "../../Storage.ts"
import * as Webhook from "../../Webhook.ts"
import { readAll } from "./events.ts"
import { claimOne, type MakeStorage, queue, seed, sha, test } from "./fixtures.ts"

const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))
const later = Effect.map(now, (at) => DateTime.add(at, { seconds: 5 }))

/** Queues a build of the version and runs it to success with one log line; the queue must be empty before. */
const finished = (version: AppVersion) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const [queued] = yield* queue(version)
    const { build, fence } = yield* claimOne("engine")
    expect(build.id).toBe(queued!.id)
    yield* storage.recordStep(build.id, fence, {
      index: 0,
      name: "build",
      status: "succeeded",
      startedAt: yield* now,
      completedAt: yield* now,
      exitCode: 0,
      error: null
    })
    return yield* storage.appendAndTransition(
      build.id,
      fence,
      [{ seq: 1, ts: yield* now, stream: "stdout", step: null, text: `built ${build.sequenceNumber}` }],
      [{ _tag: "Succeeded", at: yield* now, ...fence, imageTag: null, imageDigest: null }]
    )
  })

const ids = (builds: ReadonlyArray<Build>) => builds.map((build) => build.id)

const exists = (id: Build["id"]) =>
  Storage.use((storage) => Effect.map(Effect.exit(storage.getBuild(Access.all, id)), Exit.isSuccess))

/** Retention's writes: logs that expire, builds deleted beyond a count or an age, the feed trimmed, and leases. */
export const retention = (name: string, make: MakeStorage) =>
  describe(`${name} › storage: retention`, () => {
    const it = test(make)

    it("expires the logs of stopped builds only, once each, with an event, and reads them as expired", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        const logged = yield* finished(version)
        const [silent] = yield* queue(version)
        yield* storage.requestCancel(Access.all, silent!.id, "not needed")
        const [running] = yield* queue(version)
        const { fence } = yield* claimOne("engine")
        yield* storage.appendLogs(running!.id, fence, [
          { seq: 1, ts: yield* now, stream: "stdout", step: null, text: "still going" }
        ])
        const [waiting] = yield* queue(version)
        const request = { appId: version.appId, stoppedBefore: yield* later, limit: 1 }

        const first = yield* storage.expireLogs(request)
        expect(ids(first)).toEqual([logged.id])
        const second = yield* storage.expireLogs({ ...request, limit: 10 })
        expect(ids(second)).toEqual([silent!.id])
        expect(yield* storage.expireLogs({ ...request, limit: 10 })).toEqual([])

        const page = yield* storage.readLogs(Access.all, logged.id, 0, 100)
        expect(page.lines).toEqual([])
        expect(page.expiredAt).not.toBeNull()
        expect((yield* storage.readLogs(Access.all, silent!.id, 0, 100)).expiredAt).not.toBeNull()
        const live = yield* storage.readLogs(Access.all, running!.id, 0, 100)
        expect(live).toMatchObject({ expiredAt: null, lines: [{ text: "still going" }] })
        expect((yield* storage.readLogs(Access.all, waiting!.id, 0, 100)).expiredAt).toBeNull()
        // The build itself stays, with its steps.
        expect((yield* storage.getBuild(Access.all, logged.id)).steps).toHaveLength(1)

        const expired = (yield* readAll()).filter((event) => event.type === "build.logs_expired")
        expect(expired.map((event) => event.subject)).toEqual([logged.id, silent!.id])
        expect(expired[0]).toMatchObject({ data: { build: { id: logged.id, status: "completed" } } })
      }))

    it("keeps logs of builds that stopped after the cut-off", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        const before = yield* now
        yield* Effect.sleep("20 millis")
        const build = yield* finished(version)
        expect(yield* storage.expireLogs({ appId: version.appId, stoppedBefore: before, limit: 10 })).toEqual(
          []
        )
        expect((yield* storage.readLogs(Access.all, build.id, 0, 10)).lines).toHaveLength(1)
      }))

    it("deletes stopped builds beyond the newest N, oldest first, with steps and logs, never an active one", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        const done = [yield* finished(version), yield* finished(version), yield* finished(version)]
        const [active] = yield* queue(version)
        yield* claimOne("engine")
        const [queued] = yield* queue(version)
        // Newest 2 are the queued and the active build: every stopped one is beyond them.
        const request = { appId: version.appId, keep: 2, createdBefore: null, limit: 2 }
        expect(ids(yield* storage.deleteBuilds(request))).toEqual(ids(done.slice(0, 2)))
        expect(ids(yield* storage.deleteBuilds(request))).toEqual([done[2]!.id])
        expect(yield* storage.deleteBuilds(request)).toEqual([])
        for (const build of done) {
          expect(yield* exists(build.id)).toBe(false)
          expect(Exit.isFailure(yield* Effect.exit(storage.readLogs(Access.all, build.id, 0, 10)))).toBe(true)
        }
        expect(yield* exists(active!.id)).toBe(true)
        expect(yield* exists(queued!.id)).toBe(true)
        // An age cut-off in the future does not reach them either.
        const all = { appId: version.appId, keep: null, createdBefore: yield* later, limit: 100 }
        expect(yield* storage.deleteBuilds(all)).toEqual([])

        const deleted = (yield* readAll()).filter((event) => event.type === "build.deleted")
        expect(deleted.map((event) => event.subject)).toEqual(ids(done))
        expect(deleted[0]).toMatchObject({ data: { build: { id: done[0]!.id, sequenceNumber: 1 } } })
        const listed = yield* storage.listBuilds(Access.all, Query.first(10))
        expect(listed.rows.map((build) => build.id).sort()).toEqual([active!.id, queued!.id].sort())
      }))

    it("keeps the newest N stopped builds and deletes by age alone when no count is set", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        const done: Array<Build> = []
        for (let n = 0; n < 3; n++) {
          done.push(yield* finished(version))
          // Each created in a millisecond of its own, so that one is strictly older than the next.
          yield* Effect.sleep("5 millis")
        }
        const keep = { appId: version.appId, keep: 3, createdBefore: null, limit: 10 }
        expect(yield* storage.deleteBuilds(keep)).toEqual([])
        const old = { appId: version.appId, keep: null, createdBefore: done[1]!.createdAt, limit: 10 }
        expect(ids(yield* storage.deleteBuilds(old))).toEqual([done[0]!.id])
        expect(yield* exists(done[1]!.id)).toBe(true)
      }))

    it("deletes only the app it is asked about", () =>
      Effect.gen(function* () {
        const { storage, version, workspace } = yield* seed()
        const other = yield* storage.createApp(Access.all, {
          workspaceId: workspace.id,
          handle: "api",
          name: "API",
          kind: "app",
          build: (yield* storage.getApp(Access.all, version.appId)).build
        })
        const theirs = yield* storage.createAppVersion(Access.all, {
          appId: other.id,
          source: { type: "git", url: "https://git.example.com/acme/api.git", commitSha: sha(2) }
        })
        const kept = yield* finished(theirs)
        yield* finished(version)
        const request = { appId: version.appId, keep: null, createdBefore: yield* later, limit: 10 }
        expect(yield* storage.deleteBuilds(request)).toHaveLength(1)
        expect(yield* exists(kept.id)).toBe(true)
      }))

    it("deletes a version with its last build, unless it is its app's newest", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        yield* finished(version)
        const newer = yield* storage.createAppVersion(Access.all, {
          appId: version.appId,
          source: { type: "git", url: "https://git.example.com/acme/web.git", commitSha: sha(3) }
        })
        const unbuilt = yield* storage.createAppVersion(Access.all, {
          appId: version.appId,
          source: { type: "git", url: "https://git.example.com/acme/web.git", commitSha: sha(4) }
        })
        yield* finished(newer)
        yield* finished(unbuilt)
        const request = { appId: version.appId, keep: null, createdBefore: yield* later, limit: 10 }
        expect(yield* storage.deleteBuilds(request)).toHaveLength(3)
        const versionExists = (id: AppVersion["id"]) =>
          Effect.map(Effect.exit(storage.getAppVersion(Access.all, id)), Exit.isSuccess)
        expect(yield* versionExists(version.id)).toBe(false)
        expect(yield* versionExists(newer.id)).toBe(false)
        // The app's newest version stays: a next build would be of it.
        expect(yield* versionExists(unbuilt.id)).toBe(true)
      }))

    it("prunes old events once fan-out has passed them, and deliveries once they are no longer pending", () =>
      Effect.gen(function* () {
        const { storage, version, workspace } = yield* seed()
        const hook = yield* storage.createWebhook(Access.all, {
          workspaceId: workspace.id,
          url: "https://hooks.example.com/kiln",
          types: [],
          enabled: true,
          secret: Webhook.generateSecret()
        })
        yield* queue(version, 2)
        const cutoff = yield* later
        const before = yield* readAll()
        expect(before.length).toBeGreaterThanOrEqual(3)
        // Nothing fanned out yet: every event still owes its deliveries.
        expect(yield* storage.pruneEvents(cutoff, 100)).toBe(0)
        while ((yield* storage.fanOutEvents(100)) > 0) {}
        const pending = yield* storage.listDeliveries(Access.all, hook.id, { before: null, limit: 100 })
        expect(pending.length).toBeGreaterThanOrEqual(2)
        const [claimed] = yield* storage.claimDeliveries({ owner: "sender", leaseMs: 30_000, max: 1 })
        yield* storage.finishDeliveries([
          {
            id: claimed!.delivery.id,
            fence: claimed!.fence,
            attempt: {
              at: yield* now,
              statusCode: 200,
              durationMs: 1,
              error: null,
              next: { _tag: "Delivered" },
              disable: null
            }
          }
        ])
        // Events two at a time, then the delivered delivery, then nothing.
        expect(yield* storage.pruneEvents(cutoff, 2)).toBe(3)
        let pruned = 0
        for (let step = -1; step !== 0; pruned += step) step = yield* storage.pruneEvents(cutoff, 2)
        expect(pruned).toBe(before.length - 2)
        expect(yield* readAll()).toEqual([])
        const left = yield* storage.listDeliveries(Access.all, hook.id, { before: null, limit: 100 })
        expect(left).toHaveLength(pending.length - 1)
        expect(left.every((delivery) => delivery.status === "pending")).toBe(true)
        // The feed goes on after the pruned events: a reader's old cursor still resumes.
        yield* queue(version)
        const resumed = yield* storage.readEvents(Access.all, {
          after: before.at(-1)!.cursor,
          types: null,
          limit: 10
        })
        expect(resumed.map((event) => event.type)).toEqual(["build.queued"])
      }))

    it("gives a named lease to one owner at a time, renewable by it, free again once it expires", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        expect(yield* storage.takeLease("retention", "a", 200)).toBe(true)
        expect(yield* storage.takeLease("retention", "b", 200)).toBe(false)
        expect(yield* storage.takeLease("other", "b", 200)).toBe(true)
        expect(yield* storage.takeLease("retention", "a", 200)).toBe(true)
        yield* Effect.sleep("300 millis")
        expect(yield* storage.takeLease("retention", "b", 200)).toBe(true)
        expect(yield* storage.takeLease("retention", "a", 200)).toBe(false)
      }))
  })
