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

describe("sqlite events", () => {
  it.effect("a version created ready or resolved writes its event with it, in commit order", () =>
    fresh(
      Effect.gen(function* () {
        const { storage, workspace, app, version: first } = yield* workspaceWithApp("acme")
        const pending = yield* storage.createAppVersion(Access.all, {
          appId: app.id,
          source: { type: "git", url: "https://git.example.com/acme/web.git", ref: "main" }
        })
        const failed = yield* storage.resolveAppVersion(Access.all, pending.id, {
          status: "failed",
          error: "no such ref"
        })
        const events = yield* storage.readEvents(Access.all, all())
        expect(events.map((event) => [event.type, event.subject, event.cursor])).toEqual([
          ["app_version.ready", first.id, "1"],
          ["app_version.failed", failed.id, "2"]
        ])
        expect(events[0]!.workspaceId).toBe(workspace.id)
        expect(events[0]!.id.startsWith("msg_")).toBe(true)
        expect(events[1]!.data).toEqual({ appVersion: JSON.parse(JSON.stringify(failed)) })
        // A resolution that fails (already resolved) writes nothing.
        yield* Effect.flip(
          storage.resolveAppVersion(Access.all, pending.id, { status: "failed", error: "x" })
        )
        expect(yield* storage.readEvents(Access.all, all())).toHaveLength(2)
      })
    )
  )

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
})

describe("sqlite webhooks", () => {
  it.effect("endpoints: create, read, change, rotate and delete, each scoped to its workspace", () =>
    fresh(
      Effect.gen(function* () {
        const { storage, workspace } = yield* workspaceWithApp("acme")
        const other = yield* workspaceWithApp("other")
        const hook = yield* endpoint(workspace.id, ["build.finished"])
        expect(hook).toMatchObject({ enabled: true, disabledReason: null, types: ["build.finished"] })
        expect(hook.id.startsWith("whk_")).toBe(true)
        const theirs = yield* endpoint(other.workspace.id)
        const mine = Access.workspaces([workspace.id])

        expect(yield* storage.getWebhook(mine, hook.id)).toEqual(hook)
        expect(yield* Effect.flip(storage.getWebhook(mine, theirs.id))).toMatchObject({
          _tag: "StorageNotFound"
        })
        expect((yield* storage.listWebhooks(mine, null)).map((w) => w.id)).toEqual([hook.id])
        expect(yield* storage.listWebhooks(mine, other.workspace.id)).toEqual([])
        expect((yield* storage.listWebhooks(Access.all, null)).map((w) => w.id)).toEqual([hook.id, theirs.id])

        yield* TestClock.adjust("1 second")
        const changed = yield* storage.updateWebhook(mine, hook.id, { url: "https://other.example.com/" })
        expect(changed).toMatchObject({ url: "https://other.example.com/", types: ["build.finished"] })
        expect(DateTime.toEpochMillis(changed.updatedAt)).toBe(1000)
        expect(yield* Effect.flip(storage.updateWebhook(mine, theirs.id, { enabled: false }))).toMatchObject({
          _tag: "StorageNotFound"
        })

        const until = DateTime.makeUnsafe(60_000)
        const rotated = yield* storage.rotateWebhookSecret(mine, hook.id, {
          secret: secret("B"),
          previousValidUntil: until
        })
        expect(rotated.previousSecretExpiresAt).toEqual(until)

        yield* Effect.flip(storage.deleteWebhook(mine, theirs.id))
        yield* storage.deleteWebhook(mine, hook.id)
        expect(yield* Effect.flip(storage.getWebhook(Access.all, hook.id))).toMatchObject({
          _tag: "StorageNotFound"
        })
        expect(yield* storage.getWebhook(Access.all, theirs.id)).toEqual(theirs)
      })
    )
  )

  it.effect("a workspace has at most maxPerWorkspace endpoints; a missing or hidden workspace has none", () =>
    fresh(
      Effect.gen(function* () {
        const { storage, workspace } = yield* workspaceWithApp("acme")
        const other = yield* workspaceWithApp("other")
        for (let i = 0; i < Webhook.maxPerWorkspace; i++) yield* endpoint(workspace.id)
        expect(yield* Effect.flip(endpoint(workspace.id))).toMatchObject({ _tag: "StorageConflict" })
        yield* endpoint(other.workspace.id)
        const hidden = storage.createWebhook(Access.workspaces([workspace.id]), {
          workspaceId: other.workspace.id,
          url: "https://receiver.example.com/",
          types: [],
          enabled: true,
          secret: secret("A")
        })
        expect(yield* Effect.flip(hidden)).toMatchObject({ _tag: "StorageNotFound" })
      })
    )
  )

  it.effect(
    "fan-out makes one due delivery per matching endpoint of the event's workspace, disabled ones too",
    () =>
      fresh(
        Effect.gen(function* () {
          const a = yield* workspaceWithApp("a")
          // Another workspace's event between a's, for no endpoint of a.
          yield* workspaceWithApp("b")
          const storage = a.storage
          const every = yield* endpoint(a.workspace.id)
          const disabled = yield* endpoint(a.workspace.id, ["app_version.ready"], false)
          const none = yield* endpoint(a.workspace.id, ["build.finished"])
          const before = a.version
          const later = yield* a.ready(2)

          yield* TestClock.adjust("5 seconds")
          expect(yield* storage.fanOutEvents(2)).toBe(2)
          expect(yield* storage.fanOutEvents(10)).toBe(1)
          expect(yield* storage.fanOutEvents(10)).toBe(0)

          const [events, everyLog, disabledLog, noneLog] = [
            yield* storage.readEvents(Access.all, all()),
            yield* storage.listDeliveries(Access.all, every.id, { before: null, limit: 10 }),
            yield* storage.listDeliveries(Access.all, disabled.id, { before: null, limit: 10 }),
            yield* storage.listDeliveries(Access.all, none.id, { before: null, limit: 10 })
          ]
          const aEvents = events.filter((event) => event.workspaceId === a.workspace.id)
          // Newest first.
          expect(everyLog.map((d) => d.subject)).toEqual([later.id, before.id])
          expect(everyLog.map((d) => d.eventId)).toEqual(aEvents.map((event) => event.id).reverse())
          expect(disabledLog.map((d) => d.subject)).toEqual([later.id, before.id])
          expect(noneLog).toEqual([])
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
})

describe("sqlite deliveries", () => {
  /** One endpoint with one pending delivery for each of two versions (two subjects). */
  const setup = Effect.gen(function* () {
    const a = yield* workspaceWithApp("a")
    const hook = yield* endpoint(a.workspace.id)
    const second = yield* a.ready(2)
    yield* a.storage.fanOutEvents(100)
    return { ...a, hook, first: a.version, second }
  })

  it.effect("claims lease due deliveries one subject at a time per endpoint, fenced by owner and claim", () =>
    fresh(
      Effect.gen(function* () {
        const { storage, hook, workspace } = yield* setup
        // A second delivery of the first subject: it waits for the first.
        const ping = Event.ping(yield* Id.generate("msg"), workspace.id, hook.id, DateTime.makeUnsafe(0))
        const p1 = yield* storage.enqueuePing(Access.all, hook.id, ping)
        const p2 = yield* storage.enqueuePing(Access.all, hook.id, ping)
        expect(yield* storage.readEvents(Access.all, all())).toHaveLength(2)

        const firstRound = yield* storage.claimDeliveries({ owner: "s1", leaseMs: 1000, max: 10 })
        expect(firstRound).toHaveLength(3)
        expect(firstRound.map((c) => c.delivery.id)).toContain(p1.id)
        expect(firstRound.map((c) => c.delivery.id)).not.toContain(p2.id)
        expect(firstRound.every((c) => c.fence.owner === "s1" && c.fence.claim === 1)).toBe(true)
        expect(firstRound[0]!.secrets).toEqual([secret("A")])
        expect(firstRound[0]!.url).toBe("https://receiver.example.com/hook")
        // Leased: nothing more to claim until a lease ends.
        expect(yield* storage.claimDeliveries({ owner: "s2", leaseMs: 1000, max: 10 })).toEqual([])

        const pingClaim = firstRound.find((c) => c.delivery.id === p1.id)!
        const at = DateTime.makeUnsafe(10)
        expect(yield* storage.finishDelivery(p1.id, { owner: "s1", claim: 2 }, delivered(at))).toBe(false)
        expect(yield* storage.finishDelivery(p1.id, { owner: "s2", claim: 1 }, delivered(at))).toBe(false)
        expect(yield* storage.finishDelivery(p1.id, pingClaim.fence, delivered(at))).toBe(true)
        expect(yield* storage.finishDelivery(p1.id, pingClaim.fence, delivered(at))).toBe(false)
        expect(yield* storage.getDelivery(Access.all, p1.id)).toMatchObject({
          status: "delivered",
          attempts: 1,
          lastAttemptAt: at,
          lastStatusCode: 200,
          lastDurationMs: 5,
          lastError: null,
          nextAttemptAt: null,
          deliveredAt: at
        })
        // The next ping is now first of its subject.
        const secondRound = yield* storage.claimDeliveries({ owner: "s2", leaseMs: 1000, max: 10 })
        expect(secondRound.map((c) => c.delivery.id)).toEqual([p2.id])

        // An expired lease is claimed again, with the next claim number; the old holder is fenced out.
        yield* TestClock.adjust("1001 millis")
        const reclaimed = yield* storage.claimDeliveries({ owner: "s3", leaseMs: 1000, max: 10 })
        expect(reclaimed.map((c) => c.fence)).toEqual([
          { owner: "s3", claim: 2 },
          { owner: "s3", claim: 2 },
          { owner: "s3", claim: 2 }
        ])
        const stale = firstRound.find((c) => c.delivery.id !== p1.id)!
        expect(yield* storage.finishDelivery(stale.delivery.id, stale.fence, delivered(at))).toBe(false)
      })
    )
  )

  it.effect("a retry waits until it is due and keeps its subject's later deliveries waiting", () =>
    fresh(
      Effect.gen(function* () {
        const { storage, hook, workspace } = yield* setup
        const ping = Event.ping(yield* Id.generate("msg"), workspace.id, hook.id, DateTime.makeUnsafe(0))
        yield* storage.enqueuePing(Access.all, hook.id, ping)
        const again = yield* storage.enqueuePing(Access.all, hook.id, ping)
        const claimed = yield* storage.claimDeliveries({ owner: "s", leaseMs: 60_000, max: 10 })
        const head = claimed.find((c) => c.delivery.subject === "ping")!
        const retryAt = DateTime.makeUnsafe(30_000)
        const retried = yield* storage.finishDelivery(head.delivery.id, head.fence, {
          at: DateTime.makeUnsafe(1),
          statusCode: 500,
          durationMs: 12,
          error: "HTTP 500",
          next: { _tag: "Retry", at: retryAt },
          disable: null
        })
        expect(retried).toBe(true)
        expect(yield* storage.getDelivery(Access.all, head.delivery.id)).toMatchObject({
          status: "pending",
          attempts: 1,
          lastStatusCode: 500,
          lastError: "HTTP 500",
          nextAttemptAt: retryAt,
          deliveredAt: null
        })
        expect(yield* storage.claimDeliveries({ owner: "s", leaseMs: 60_000, max: 10 })).toEqual([])
        yield* TestClock.adjust("30 seconds")
        const due = yield* storage.claimDeliveries({ owner: "s", leaseMs: 60_000, max: 10 })
        expect(due.map((c) => c.delivery.id)).toEqual([head.delivery.id])
        expect(due[0]!.fence.claim).toBe(2)
        yield* storage.finishDelivery(head.delivery.id, due[0]!.fence, {
          at: DateTime.makeUnsafe(30_000),
          statusCode: null,
          durationMs: null,
          error: "connection refused",
          next: { _tag: "Failed" },
          disable: null
        })
        // Failed for good: the subject's next delivery goes.
        const next = yield* storage.claimDeliveries({ owner: "s", leaseMs: 60_000, max: 10 })
        expect(next.map((c) => c.delivery.id)).toEqual([again.id])
        expect(yield* storage.getDelivery(Access.all, head.delivery.id)).toMatchObject({
          status: "failed",
          attempts: 2,
          nextAttemptAt: null
        })
      })
    )
  )

  it.effect("an attempt that disables the endpoint keeps its backlog until a caller enables it again", () =>
    fresh(
      Effect.gen(function* () {
        const { storage, hook, first, second } = yield* setup
        const [one] = yield* storage.claimDeliveries({ owner: "s", leaseMs: 60_000, max: 1 })
        expect(one!.delivery.subject).toBe(first.id)
        yield* storage.finishDelivery(one!.delivery.id, one!.fence, {
          at: DateTime.makeUnsafe(7),
          statusCode: 410,
          durationMs: 3,
          error: "HTTP 410",
          next: { _tag: "Failed" },
          disable: "the endpoint answered 410 Gone"
        })
        expect(yield* storage.getWebhook(Access.all, hook.id)).toMatchObject({
          enabled: false,
          disabledReason: "the endpoint answered 410 Gone"
        })
        expect(yield* storage.claimDeliveries({ owner: "s", leaseMs: 60_000, max: 10 })).toEqual([])
        expect(yield* storage.updateWebhook(Access.all, hook.id, { enabled: true })).toMatchObject({
          enabled: true,
          disabledReason: null
        })
        const backlog = yield* storage.claimDeliveries({ owner: "s", leaseMs: 60_000, max: 10 })
        expect(backlog.map((c) => c.delivery.subject)).toEqual([second.id])
      })
    )
  )

  it.effect("signs with the previous secret too until its rotation window ends", () =>
    fresh(
      Effect.gen(function* () {
        const { storage, hook } = yield* setup
        yield* storage.rotateWebhookSecret(Access.all, hook.id, {
          secret: secret("B"),
          previousValidUntil: DateTime.makeUnsafe(10_000)
        })
        const [during] = yield* storage.claimDeliveries({ owner: "s", leaseMs: 100, max: 1 })
        expect(during!.secrets).toEqual([secret("B"), secret("A")])
        yield* TestClock.adjust("10 seconds")
        const [after] = yield* storage.claimDeliveries({ owner: "s", leaseMs: 100, max: 1 })
        expect(after!.secrets).toEqual([secret("B")])
      })
    )
  )

  it.effect("the delivery log pages newest first; redelivery makes one due again with the same event", () =>
    fresh(
      Effect.gen(function* () {
        const { storage, hook, workspace } = yield* setup
        const other = yield* workspaceWithApp("other")
        const theirs = yield* endpoint(other.workspace.id)
        const mine = Access.workspaces([workspace.id])
        const log = yield* storage.listDeliveries(mine, hook.id, { before: null, limit: 10 })
        expect(log).toHaveLength(2)
        expect(yield* storage.listDeliveries(mine, hook.id, { before: log[0]!.id, limit: 10 })).toEqual([
          log[1]
        ])
        expect(yield* storage.listDeliveries(mine, hook.id, { before: null, limit: 1 })).toEqual([log[0]])
        expect(
          yield* Effect.flip(storage.listDeliveries(mine, theirs.id, { before: null, limit: 1 }))
        ).toMatchObject({ _tag: "StorageNotFound" })
        expect(
          yield* Effect.flip(storage.getDelivery(Access.workspaces([other.workspace.id]), log[0]!.id))
        ).toMatchObject({ _tag: "StorageNotFound" })

        const [claimed] = yield* storage.claimDeliveries({ owner: "s", leaseMs: 60_000, max: 1 })
        const at = DateTime.makeUnsafe(3)
        yield* storage.finishDelivery(claimed!.delivery.id, claimed!.fence, delivered(at))
        yield* TestClock.adjust("1 minute")
        const again = yield* storage.redeliver(mine, claimed!.delivery.id)
        expect(again).toMatchObject({
          id: claimed!.delivery.id,
          eventId: claimed!.delivery.eventId,
          status: "pending",
          attempts: 1,
          nextAttemptAt: DateTime.makeUnsafe(60_000)
        })
        expect(
          yield* Effect.flip(storage.redeliver(Access.workspaces([other.workspace.id]), again.id))
        ).toMatchObject({ _tag: "StorageNotFound" })
        const resent = yield* storage.claimDeliveries({ owner: "t", leaseMs: 60_000, max: 10 })
        const same = resent.find((c) => c.delivery.id === again.id)!
        expect(same.body).toBe(claimed!.body)
        expect(same.fence).toEqual({ owner: "t", claim: 2 })

        // Deleting the endpoint deletes its deliveries.
        yield* storage.deleteWebhook(mine, hook.id)
        expect(yield* Effect.flip(storage.getDelivery(Access.all, again.id))).toMatchObject({
          _tag: "StorageNotFound"
        })
      })
    )
  )
})
