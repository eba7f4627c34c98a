import { describe, expect } from "@effect/vitest"
import { Clock, DateTime, Effect } from "effect"
import * as Access from "../../Access.ts"
import type { BuildStep } from "../../Build.ts"
import type * as Event from "../../Event.ts"
import * as EventModule from "../../Event.ts"
import { Storage } from "../../Storage.ts"
import { claimOne, type MakeStorage, queue, seed, sha, test } from "./fixtures.ts"

const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))

/** Every event the access sees, read in pages of `pageSize` from the start. */
export const readAll = (
  access: Access.Access = Access.all,
  pageSize = 1000,
  types: Event.Read["types"] = null
) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const all: Array<Event.Stored> = []
    let after: Event.Cursor | null = null
    while (true) {
      const page: ReadonlyArray<Event.Stored> = yield* storage.readEvents(access, {
        after,
        types,
        limit: pageSize
      })
      all.push(...page)
      if (page.length < pageSize) return all
      after = page[page.length - 1]!.cursor
    }
  })

const typesOf = (events: ReadonlyArray<Event.Event>, subject?: string) =>
  events.filter((event) => subject === undefined || event.subject === subject).map((event) => event.type)

const step = (status: BuildStep["status"], at: DateTime.Utc): BuildStep => ({
  index: 0,
  name: "build",
  status,
  startedAt: at,
  completedAt: status === "running" ? null : at,
  exitCode: status === "running" ? null : 0,
  error: null
})

/** The outbox: every change's events, written with it, read back in one order from any cursor. */
export const events = (name: string, make: MakeStorage) =>
  describe(`${name} › storage: events`, () => {
    const it = test(make)

    it("writes an event with each change of a build's life, in the order they happened", () =>
      Effect.gen(function* () {
        const { storage, version, workspace } = yield* seed()
        const [build] = yield* queue(version)
        const { fence } = yield* claimOne("engine")
        yield* storage.recordStep(build!.id, fence, step("running", yield* now))
        yield* storage.transition(build!.id, { _tag: "Started", at: yield* now, ...fence })
        yield* storage.recordStep(build!.id, fence, step("succeeded", yield* now))
        yield* storage.appendAndTransition(
          build!.id,
          fence,
          [{ seq: 1, ts: yield* now, stream: "stdout", step: null, text: "done" }],
          [{ _tag: "Succeeded", at: yield* now, ...fence, imageTag: "r/web:1", imageDigest: null }]
        )
        const all = yield* readAll()
        expect(typesOf(all)).toEqual([
          "app_version.ready",
          "build.queued",
          "build.running",
          "build.step.started",
          "build.started",
          "build.step.finished",
          "build.finished"
        ])
        expect(all.every((event) => event.workspaceId === workspace.id)).toBe(true)
        expect(all[0]).toMatchObject({
          subject: version.id,
          data: { appVersion: { id: version.id, status: "ready" } }
        })
        const finished = all[all.length - 1]!
        expect(finished).toMatchObject({
          subject: build!.id,
          data: { build: { id: build!.id, status: "completed", outcome: "success", imageTag: "r/web:1" } }
        })
        // The canonical view: lease details stay inside.
        expect(Object.keys(finished.data.build as object)).not.toContain("owner")
        expect(all[5]).toMatchObject({ data: { step: { name: "build", status: "succeeded" } } })
        expect(new Set(all.map((event) => event.id)).size).toBe(all.length)
        expect(all.every((event) => event.id.startsWith("msg_"))).toBe(true)
      }))

    it("announces each claimed build, oldest first, exactly as the domain's claim event shows it", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        const created = yield* Effect.forEach(["ada", 'o"brien \\ é'], (createdBy, i) =>
          storage.createBuild(Access.all, {
            appVersionId: version.id,
            trigger: "manual",
            createdBy,
            metadata: { pr: 7 + i, labels: ["a", "ü"], nested: { ok: true, none: null } },
            triggerMetadata: i === 0 ? null : { ref: "refs/heads/main" }
          })
        )
        const claimed = yield* storage.claimNext({ owner: "engine", leaseMs: 30_000, max: 5 })
        expect(claimed.map((build) => build.id)).toEqual(created.map((build) => build.id))
        const running = (yield* readAll()).filter((event) => event.type === "build.running")
        expect(running.map((event) => event.subject)).toEqual(created.map((build) => build.id))
        for (const [i, event] of running.entries()) {
          const { cursor: _cursor, ...stored } = event
          expect(stored).toEqual(EventModule.forClaim(claimed[i]!, () => event.id))
        }
      }))

    it("announces cancels, skips and reaped builds with their outcome", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        const [queued, claimedLater, skipped] = yield* queue(version, 3)
        yield* storage.requestCancel(Access.all, queued!.id, "not needed")
        yield* storage.transition(skipped!.id, { _tag: "Skip", at: yield* now, reason: "no change" })
        const { build, fence } = yield* claimOne("engine", 1)
        expect(build.id).toBe(claimedLater!.id)
        yield* storage.requestCancel(Access.all, build.id, "stop")
        yield* Effect.sleep("20 millis")
        yield* storage.reapExpired()
        const all = yield* readAll()
        expect(typesOf(all, queued!.id)).toEqual(["build.queued", "build.finished"])
        expect(all.find((e) => e.subject === queued!.id && e.type === "build.finished")).toMatchObject({
          data: { build: { outcome: "cancelled", cancelReason: "not needed" } }
        })
        expect(typesOf(all, skipped!.id)).toEqual(["build.queued", "build.finished"])
        expect(typesOf(all, build.id)).toEqual([
          "build.queued",
          "build.running",
          "build.cancel_requested",
          "build.finished"
        ])
        expect(all.filter((e) => e.subject === build.id).at(-1)).toMatchObject({
          data: { build: { outcome: "cancelled" } }
        })
        // The reaped build's fence is gone: its owner's late write changes nothing and announces nothing.
        const count = all.length
        yield* Effect.flip(storage.transition(build.id, { _tag: "Started", at: yield* now, ...fence }))
        expect((yield* readAll()).length).toBe(count)
      }))

    it("announces a lost build", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        yield* queue(version)
        const { build } = yield* claimOne("engine", 1)
        yield* Effect.sleep("20 millis")
        yield* storage.reapExpired()
        const last = (yield* readAll()).at(-1)!
        expect(last).toMatchObject({
          type: "build.finished",
          data: { build: { id: build.id, outcome: "lost" } }
        })
      }))

    it("announces versions that become ready or fail, and nothing for a pending one", () =>
      Effect.gen(function* () {
        const { storage, app } = yield* seed()
        const archive = yield* storage.createAppVersion(Access.all, {
          appId: app.id,
          source: { type: "archive" }
        })
        const broken = yield* storage.createAppVersion(Access.all, {
          appId: app.id,
          source: { type: "archive" }
        })
        expect(typesOf(yield* readAll())).toEqual(["app_version.ready"])
        yield* storage.resolveAppVersion(Access.all, archive.id, { status: "ready", commitSha: sha(7) })
        yield* storage.resolveAppVersion(Access.all, broken.id, { status: "failed", error: "not gzip" })
        const all = yield* readAll()
        expect(typesOf(all)).toEqual(["app_version.ready", "app_version.ready", "app_version.failed"])
        expect(all[1]).toMatchObject({ subject: archive.id, data: { appVersion: { commitSha: sha(7) } } })
        expect(all[2]).toMatchObject({ subject: broken.id, data: { appVersion: { error: "not gzip" } } })
        // A refused resolution writes nothing.
        yield* Effect.flip(
          storage.resolveAppVersion(Access.all, broken.id, { status: "failed", error: "again" })
        )
        expect((yield* readAll()).length).toBe(3)
      }))

    it("writes nothing for a change that did not happen", () =>
      Effect.gen(function* () {
        const { storage, version, app } = yield* seed()
        const [build] = yield* queue(version)
        yield* storage.requestCancel(Access.all, build!.id, null)
        const count = (yield* readAll()).length
        // Already stopped: accepted false, no event.
        expect((yield* storage.requestCancel(Access.all, build!.id, null)).accepted).toBe(false)
        // An idempotent repeat returns the first build and announces nothing.
        const keyed = {
          appVersionId: version.id,
          trigger: "manual",
          createdBy: "t",
          idempotencyKey: "k"
        } as const
        yield* storage.createBuild(Access.all, keyed)
        yield* storage.createBuild(Access.all, keyed)
        // A key reused for another version is refused, and its transaction leaves no event.
        const other = yield* storage.createAppVersion(Access.all, {
          appId: app.id,
          source: { type: "git", url: "https://git.example.com/acme/web.git", commitSha: sha(3) }
        })
        yield* Effect.flip(storage.createBuild(Access.all, { ...keyed, appVersionId: other.id }))
        expect(typesOf((yield* readAll()).slice(count))).toEqual(["build.queued", "app_version.ready"])
      }))

    it("resumes from any cursor with no gap and no duplicate", () =>
      Effect.gen(function* () {
        const { version } = yield* seed()
        yield* queue(version, 9)
        const whole = yield* readAll()
        expect(whole.length).toBe(10)
        for (const size of [1, 2, 3, 7]) expect(yield* readAll(Access.all, size)).toEqual(whole)
        const storage = yield* Storage
        const rest = yield* storage.readEvents(Access.all, {
          after: whole[4]!.cursor,
          types: null,
          limit: 100
        })
        expect(rest).toEqual(whole.slice(5))
        const none = yield* storage.readEvents(Access.all, {
          after: whole[9]!.cursor,
          types: null,
          limit: 100
        })
        expect(none).toEqual([])
      }))

    it("shows each caller its own workspaces, and only the types asked for", () =>
      Effect.gen(function* () {
        const first = yield* seed()
        const second = yield* seed({ name: "other" })
        yield* queue(first.version, 2)
        yield* queue(second.version, 3)
        const mine = yield* readAll(Access.workspaces([first.workspace.id]))
        expect(mine.length).toBe(3)
        expect(mine.every((event) => event.workspaceId === first.workspace.id)).toBe(true)
        const theirs = yield* readAll(Access.workspaces([second.workspace.id]), 2)
        expect(theirs.length).toBe(4)
        const queued = yield* readAll(Access.all, 2, ["build.queued"])
        expect(queued.length).toBe(5)
        expect(queued.every((event) => event.type === "build.queued")).toBe(true)
        expect(yield* readAll(Access.workspaces([]))).toEqual([])
      }))

    it("never shows a reader an event behind a cursor it already has, while writers race", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        const writers = 8
        const perWriter = 15
        const seen: Array<Event.Stored> = []
        let done = false
        const reader = Effect.gen(function* () {
          let after: Event.Cursor | null = null
          while (true) {
            const finished = done
            const page: ReadonlyArray<Event.Stored> = yield* storage.readEvents(Access.all, {
              after,
              types: null,
              limit: 50
            })
            seen.push(...page)
            if (page.length > 0) after = page[page.length - 1]!.cursor
            else if (finished) return
            else yield* Effect.sleep("1 millis")
          }
        })
        const write = Effect.forEach(
          Array.from({ length: writers }),
          () =>
            Effect.forEach(Array.from({ length: perWriter }), () =>
              storage.createBuild(Access.all, {
                appVersionId: version.id,
                trigger: "manual",
                createdBy: "race"
              })
            ),
          { concurrency: "unbounded" }
        ).pipe(
          Effect.ensuring(
            Effect.sync(() => {
              done = true
            })
          )
        )
        yield* Effect.all([reader, write], { concurrency: "unbounded" })
        const whole = yield* readAll()
        expect(whole.length).toBe(1 + writers * perWriter)
        expect(seen.map((event) => event.id)).toEqual(whole.map((event) => event.id))
      }))
  })
