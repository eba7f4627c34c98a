import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { Access, Event, Id, Storage, Webhook } from "@kiln/core"
import { StorageConformance } from "@kiln/core/testing"
import { DateTime, Effect, Schema } from "effect"
import { TestClock } from "effect/testing"
import { afterAll, describe } from "vitest"
import { SqliteStorage } from "../src/index.ts"

const dir = mkdtempSync(join(tmpdir(), "kiln-sqlite-events-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let files = 0
const tempFile = () => join(dir, `events-${++files}.db`)

/** A fresh storage on a new file, on the test clock (leases and retries move with `TestClock.adjust`). */
const fresh = <A, E>(body: Effect.Effect<A, E, Storage.Storage>) =>
  Effect.provide(body, SqliteStorage.layer({ filename: tempFile() }))

const secret = (char: string) => Schema.decodeSync(Webhook.Secret)(`whsec_${char.repeat(32)}`)
const cursor = Schema.decodeSync(Event.Cursor)

/** A workspace with an app and a ready version (one `app_version.ready` event); `ready(n)` writes another. */
const workspaceWithApp = (name: string) =>
  Effect.map(StorageConformance.seed({ name }), (seeded) => ({
    ...seeded,
    ready: (n: number) =>
      seeded.storage.createAppVersion(Access.all, {
        appId: seeded.app.id,
        source: {
          type: "git",
          url: "https://git.example.com/acme/web.git",
          commitSha: n.toString(16).padStart(40, "0")
        }
      })
  }))

const endpoint = (workspaceId: Id.WorkspaceId, types: ReadonlyArray<Event.Type> = [], enabled = true) =>
  Storage.Storage.use((storage) =>
    storage.createWebhook(Access.all, {
      workspaceId,
      url: "https://receiver.example.com/hook",
      types,
      enabled,
      secret: secret("A")
    })
  )

const all = (after: Event.Cursor | null = null, limit = 100) => ({ after, types: null, limit })

const delivered = (at: DateTime.Utc): Webhook.Attempt => ({
  at,
  statusCode: 200,
  durationMs: 5,
  error: null,
  next: { _tag: "Delivered" },
  disable: null
})

/**
 * What the conformance suites leave to each adapter: a caller's several workspaces read as one feed,
 * cursors of PostgreSQL's form, fan-out in batches, and a redelivery that takes a delivery from its sender.
 */
describe("sqlite events", () => {
  it.effect("reads after a cursor, by type, within the caller's workspaces, in feed order", () =>
    fresh(
      Effect.gen(function* () {
        const a = yield* workspaceWithApp("a")
        const b = yield* workspaceWithApp("b")
        const c = yield* workspaceWithApp("c")
        // Interleaved: a1 b1 c1 a2 b2 c2 a3 …
        for (let n = 2; n <= 4; n++) for (const w of [a, b, c]) yield* w.ready(n)
        const storage = a.storage
        const everything = yield* storage.readEvents(Access.all, all())
        expect(everything.map((event) => event.cursor)).toEqual(
          Array.from({ length: 12 }, (_, i) => String(i + 1))
        )

        const ab = Access.workspaces([a.workspace.id, b.workspace.id])
        const page = yield* storage.readEvents(ab, all(cursor("2"), 5))
        expect(page.map((event) => event.cursor)).toEqual(["4", "5", "7", "8", "10"])
        expect(page.every((event) => event.workspaceId !== c.workspace.id)).toBe(true)
        const rest = yield* storage.readEvents(ab, all(page.at(-1)!.cursor, 5))
        expect(rest.map((event) => event.cursor)).toEqual(["11"])

        expect(yield* storage.readEvents(Access.workspaces([]), all())).toEqual([])
        expect(
          yield* storage.readEvents(Access.all, { after: null, types: ["build.queued"], limit: 100 })
        ).toEqual([])
        expect(
          yield* storage.readEvents(Access.all, { after: null, types: ["app_version.ready"], limit: 3 })
        ).toEqual(everything.slice(0, 3))
        // PostgreSQL's form is read by its leading number; one past every integer is past every event.
        expect(yield* storage.readEvents(Access.all, all(cursor("10.7")))).toEqual(everything.slice(10))
        expect(yield* storage.readEvents(Access.all, all(cursor("99999999999999999999")))).toEqual([])
      })
    )
  )

  it.effect("fans out in batches, moving past each event once, every delivery due when it is made", () =>
    fresh(
      Effect.gen(function* () {
        const a = yield* workspaceWithApp("a")
        // Another workspace's event between a's, for no endpoint of a.
        yield* workspaceWithApp("b")
        const storage = a.storage
        const every = yield* endpoint(a.workspace.id)
        const before = a.version
        const later = yield* a.ready(2)

        yield* TestClock.adjust("5 seconds")
        expect(yield* storage.fanOutEvents(2)).toBe(2)
        expect(yield* storage.fanOutEvents(10)).toBe(1)
        expect(yield* storage.fanOutEvents(10)).toBe(0)

        const events = yield* storage.readEvents(Access.all, all())
        const everyLog = yield* storage.listDeliveries(Access.all, every.id, { before: null, limit: 10 })
        const aEvents = events.filter((event) => event.workspaceId === a.workspace.id)
        // Newest first.
        expect(everyLog.map((d) => d.subject)).toEqual([later.id, before.id])
        expect(everyLog.map((d) => d.eventId)).toEqual(aEvents.map((event) => event.id).reverse())
        expect(everyLog[0]).toMatchObject({
          status: "pending",
          attempts: 0,
          eventType: "app_version.ready",
          workspaceId: a.workspace.id,
          nextAttemptAt: DateTime.makeUnsafe(5000),
          createdAt: DateTime.makeUnsafe(5000),
          deliveredAt: null
        })
        // The body is the event's, on every attempt.
        const [claimed] = yield* storage.claimDeliveries({ owner: "s", leaseMs: 1000, max: 1 })
        expect(claimed!.body).toBe(Event.body(aEvents[0]!))
        expect(claimed!.delivery.webhookId).toBe(every.id)
      })
    )
  )

  it.effect("a redelivery takes a delivery from the sender that holds it: its result is refused", () =>
    fresh(
      Effect.gen(function* () {
        const { storage, workspace } = yield* workspaceWithApp("a")
        const hook = yield* endpoint(workspace.id)
        yield* storage.fanOutEvents(100)
        const [held] = yield* storage.claimDeliveries({ owner: "s", leaseMs: 60_000, max: 1 })
        const again = yield* storage.redeliver(Access.all, held!.delivery.id)
        expect(again).toMatchObject({ status: "pending", attempts: 0, eventId: held!.delivery.eventId })
        const [taken] = yield* storage.claimDeliveries({ owner: "s", leaseMs: 60_000, max: 1 })
        expect(taken!.fence).toEqual({ owner: "s", claim: 2 })
        expect(taken!.body).toBe(held!.body)
        expect(
          yield* storage.finishDeliveries([
            { id: held!.delivery.id, fence: held!.fence, attempt: delivered(DateTime.makeUnsafe(1)) },
            { id: taken!.delivery.id, fence: taken!.fence, attempt: delivered(DateTime.makeUnsafe(2)) }
          ])
        ).toEqual([false, true])
        // A page before a delivery the endpoint does not have is empty, not the newest page again.
        const unknown = Schema.decodeSync(Id.DeliveryId)("dlv_01jd0000000000000000000000")
        expect(yield* storage.listDeliveries(Access.all, hook.id, { before: unknown, limit: 10 })).toEqual([])
      })
    )
  )
})
