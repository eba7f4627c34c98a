import { describe, expect } from "@effect/vitest"
import { Clock, DateTime, Effect, Schema } from "effect"
import * as Access from "../../Access.ts"
import * as Event from "../../Event.ts"
import * as Id from "../../Id.ts"
import { Storage } from "../../Storage.ts"
import * as Webhook from "../../Webhook.ts"
import { readAll } from "./events.ts"
import { claimOne, type MakeStorage, queue, seed, test } from "./fixtures.ts"

const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))

const secret = (n: number) =>
  Schema.decodeSync(Webhook.Secret)(`whsec_${Buffer.alloc(32, n).toString("base64")}`)

const endpoint = (workspaceId: Id.WorkspaceId, options: Partial<Webhook.NewWebhook> = {}) =>
  Storage.use((storage) =>
    storage.createWebhook(Access.all, {
      workspaceId,
      url: "https://hooks.example.com/kiln",
      types: [],
      enabled: true,
      secret: secret(1),
      ...options
    })
  )

const fanOutAll = Storage.use((storage) =>
  Effect.gen(function* () {
    let moved = 0
    while (true) {
      const step = yield* storage.fanOutEvents(100)
      if (step === 0) return moved
      moved += step
    }
  })
)

const claim = (owner: string, max = 100, leaseMs = 30_000, perSubject?: number) =>
  Storage.use((storage) => storage.claimDeliveries({ owner, leaseMs, max, perSubject }))

/** A claim's deliveries as subject and type, per subject in the order they were answered. */
const runsOf = (claimed: ReadonlyArray<Webhook.ClaimedDelivery>) =>
  [...Map.groupBy(claimed, (c) => c.delivery.subject).values()].map((run) =>
    run.map((c) => [c.delivery.subject, c.delivery.eventType])
  )

const attempt = (next: Webhook.Attempt["next"], options: Partial<Webhook.Attempt> = {}) =>
  Effect.map(
    now,
    (at): Webhook.Attempt => ({
      at,
      statusCode: 200,
      durationMs: 5,
      error: null,
      next,
      disable: null,
      ...options
    })
  )

const delivered = attempt({ _tag: "Delivered" })

/** Records one attempt, as a sender's batch of one. */
const finish = (claimed: Webhook.ClaimedDelivery, result: Webhook.Attempt) =>
  Storage.use((storage) =>
    storage.finishDeliveries([{ id: claimed.delivery.id, fence: claimed.fence, attempt: result }])
  ).pipe(Effect.map(([recorded]) => recorded!))

/** Webhook endpoints, the fan-out of events into deliveries, and leased, ordered delivery. */
export const webhooks = (name: string, make: MakeStorage) =>
  describe(`${name} › storage: webhooks`, () => {
    const it = test(make)

    it("creates, reads, changes, rotates and deletes endpoints within the caller's workspaces", () =>
      Effect.gen(function* () {
        const { storage, workspace } = yield* seed()
        const other = yield* seed({ name: "other" })
        const hook = yield* endpoint(workspace.id, { types: ["build.finished"] })
        expect(Schema.is(Webhook.Webhook)(hook)).toBe(true)
        expect(hook).toMatchObject({ enabled: true, disabledReason: null, types: ["build.finished"] })
        const mine = Access.workspaces([workspace.id])
        const theirs = Access.workspaces([other.workspace.id])
        expect(yield* storage.getWebhook(mine, hook.id)).toEqual(hook)
        expect((yield* Effect.flip(storage.getWebhook(theirs, hook.id)))._tag).toBe("StorageNotFound")
        const foreign = yield* Effect.flip(
          storage.createWebhook(theirs, {
            workspaceId: workspace.id,
            url: "https://x.example.com",
            types: [],
            enabled: true,
            secret: secret(2)
          })
        )
        expect(foreign._tag).toBe("StorageNotFound")
        const second = yield* endpoint(other.workspace.id)
        expect((yield* storage.listWebhooks(mine, null)).map((w) => w.id)).toEqual([hook.id])
        expect((yield* storage.listWebhooks(Access.all, null)).map((w) => w.id)).toEqual([hook.id, second.id])
        expect((yield* storage.listWebhooks(Access.all, other.workspace.id)).map((w) => w.id)).toEqual([
          second.id
        ])

        const changed = yield* storage.updateWebhook(mine, hook.id, {
          url: "https://new.example.com/h",
          types: []
        })
        expect(changed).toMatchObject({ url: "https://new.example.com/h", types: [], enabled: true })
        const off = yield* storage.updateWebhook(mine, hook.id, { enabled: false })
        expect(off).toMatchObject({ enabled: false, disabledReason: null, url: "https://new.example.com/h" })
        expect((yield* Effect.flip(storage.updateWebhook(theirs, hook.id, { enabled: true })))._tag).toBe(
          "StorageNotFound"
        )
        const until = DateTime.add(yield* now, { hours: 1 })
        const rotated = yield* storage.rotateWebhookSecret(mine, hook.id, {
          secret: secret(3),
          previousValidUntil: until
        })
        expect(DateTime.toEpochMillis(rotated.previousSecretExpiresAt!)).toBe(DateTime.toEpochMillis(until))
        expect((yield* Effect.flip(storage.deleteWebhook(theirs, hook.id)))._tag).toBe("StorageNotFound")
        yield* storage.deleteWebhook(mine, hook.id)
        expect((yield* Effect.flip(storage.getWebhook(mine, hook.id)))._tag).toBe("StorageNotFound")
      }))

    it("caps the endpoints of a workspace", () =>
      Effect.gen(function* () {
        const { workspace } = yield* seed()
        for (let i = 0; i < Webhook.maxPerWorkspace; i++) yield* endpoint(workspace.id)
        expect((yield* Effect.flip(endpoint(workspace.id)))._tag).toBe("StorageConflict")
      }))

    it("fans each event out to the endpoints of its workspace that take its type, once", () =>
      Effect.gen(function* () {
        const { storage, workspace, version } = yield* seed()
        const other = yield* seed({ name: "other" })
        const all = yield* endpoint(workspace.id)
        const finishedOnly = yield* endpoint(workspace.id, { types: ["build.finished"] })
        const disabled = yield* endpoint(workspace.id, { enabled: false })
        const elsewhere = yield* endpoint(other.workspace.id)
        const [build] = yield* queue(version)
        yield* storage.requestCancel(Access.all, build!.id, null)
        const events = yield* readAll()
        expect(yield* fanOutAll).toBe(events.length)
        expect(yield* storage.fanOutEvents(100)).toBe(0)
        const listed = (id: Id.WebhookId) =>
          storage.listDeliveries(Access.all, id, { before: null, limit: 100 })
        // Events written before an endpoint existed reach it too: the fan-out follows the feed.
        expect((yield* listed(all.id)).map((d) => d.eventType)).toEqual([
          "build.finished",
          "build.queued",
          "app_version.ready"
        ])
        expect((yield* listed(finishedOnly.id)).map((d) => d.eventId)).toEqual([events.at(-1)!.id])
        expect((yield* listed(disabled.id)).length).toBe(3)
        expect((yield* listed(elsewhere.id)).map((d) => d.eventType)).toEqual(["app_version.ready"])
        const first = (yield* listed(all.id)).at(-1)!
        expect(first).toMatchObject({
          webhookId: all.id,
          workspaceId: workspace.id,
          status: "pending",
          attempts: 0,
          lastStatusCode: null,
          deliveredAt: null
        })
        expect(Schema.is(Webhook.Delivery)(first)).toBe(true)
        // The disabled endpoint's deliveries wait; the others are due now, bodies as Event.body makes them.
        const claimed = yield* claim("sender")
        expect(claimed.every((c) => c.delivery.webhookId !== disabled.id)).toBe(true)
        const event = events.find((e) => e.id === first.eventId)!
        const claimedFirst = claimed.find((c) => c.delivery.id === first.id)!
        expect(JSON.parse(claimedFirst.body)).toEqual(JSON.parse(Event.body(event)))
        expect(claimedFirst).toMatchObject({ url: "https://hooks.example.com/kiln", secrets: [secret(1)] })
      }))

    it("leases each endpoint one subject's deliveries in order, and frees the next when one ends", () =>
      Effect.gen(function* () {
        const { storage, workspace, version } = yield* seed()
        const hook = yield* endpoint(workspace.id, {
          types: ["build.queued", "build.running", "build.finished"]
        })
        const [a, b] = yield* queue(version, 2)
        const { build: claimedBuild } = yield* claimOne("engine")
        expect(claimedBuild.id).toBe(a!.id)
        yield* storage.requestCancel(Access.all, b!.id, null)
        yield* fanOutAll
        // Per build only the oldest pending delivery goes: a's queued and b's queued.
        const first = yield* claim("sender")
        expect(first.map((c) => [c.delivery.subject, c.delivery.eventType])).toEqual([
          [a!.id, "build.queued"],
          [b!.id, "build.queued"]
        ])
        // Leased: no one else gets them, and nothing after them, while the lease lives.
        expect(yield* claim("other")).toEqual([])
        yield* finish(first[0]!, yield* delivered)
        const second = yield* claim("sender")
        expect(second.map((c) => [c.delivery.subject, c.delivery.eventType])).toEqual([
          [a!.id, "build.running"]
        ])
        // A retry keeps its place: the build's later delivery waits behind it.
        const retryAt = DateTime.add(yield* now, { hours: 1 })
        expect(
          yield* finish(
            second[0]!,
            yield* attempt({ _tag: "Retry", at: retryAt }, { statusCode: 500, error: "HTTP 500" })
          )
        ).toBe(true)
        const retried = yield* storage.getDelivery(Access.all, second[0]!.delivery.id)
        expect(retried).toMatchObject({
          status: "pending",
          attempts: 1,
          lastStatusCode: 500,
          lastError: "HTTP 500"
        })
        expect(DateTime.toEpochMillis(retried.nextAttemptAt!)).toBe(DateTime.toEpochMillis(retryAt))
        expect(yield* claim("sender")).toEqual([])
        // Failed for good: the next one goes.
        const again = yield* storage.redeliver(Access.all, retried.id)
        expect(again).toMatchObject({ status: "pending", attempts: 1, eventId: retried.eventId })
        const third = yield* claim("sender")
        expect(third.map((c) => c.delivery.id)).toEqual([retried.id])
        yield* finish(third[0]!, yield* attempt({ _tag: "Failed" }))
        expect((yield* storage.getDelivery(Access.all, retried.id)).status).toBe("failed")
        expect((yield* claim("sender")).map((c) => c.delivery.eventType)).toEqual([])
        const hookDeliveries = yield* storage.listDeliveries(Access.all, hook.id, { before: null, limit: 10 })
        expect(hookDeliveries.map((d) => d.status)).toEqual(["pending", "failed", "pending", "delivered"])
      }))

    it("leases a subject's run in order, up to a due or leased one, and takes back what a sender gives back", () =>
      Effect.gen(function* () {
        const { storage, workspace, version } = yield* seed()
        yield* endpoint(workspace.id, { types: ["build.queued", "build.running", "build.finished"] })
        const [a, b] = yield* queue(version, 2)
        yield* claimOne("engine")
        yield* storage.requestCancel(Access.all, b!.id, null)
        yield* fanOutAll
        // `max` counts subjects: one subject's run comes whole.
        const first = yield* claim("sender", 1, 30_000, 5)
        expect(runsOf(first)).toEqual([
          [
            [a!.id, "build.queued"],
            [a!.id, "build.running"]
          ]
        ])
        expect(first.every((c) => c.fence.owner === "sender")).toBe(true)
        const second = yield* claim("other", 10, 30_000, 5)
        expect(runsOf(second)).toEqual([
          [
            [b!.id, "build.queued"],
            [b!.id, "build.finished"]
          ]
        ])
        const [queued, running] = first
        // A run stopped after its first: the rest is given back, unattempted, and due again at once.
        const given = { id: running!.delivery.id, fence: running!.fence, attempt: null }
        expect(
          yield* storage.finishDeliveries([
            { id: queued!.delivery.id, fence: queued!.fence, attempt: yield* delivered },
            given
          ])
        ).toEqual([true, true])
        expect(yield* storage.getDelivery(Access.all, running!.delivery.id)).toMatchObject({
          status: "pending",
          attempts: 0,
          lastAttemptAt: null
        })
        expect(yield* storage.finishDeliveries([given])).toEqual([false])
        const again = yield* claim("third", 10, 30_000, 5)
        expect(runsOf(again)).toEqual([[[a!.id, "build.running"]]])
        expect(yield* finish(again[0]!, yield* delivered)).toBe(true)

        // A run ends before a later delivery another sender still holds...
        const [bQueued, bFinished] = second
        expect(yield* finish(bQueued!, yield* delivered)).toBe(true)
        yield* storage.redeliver(Access.all, bQueued!.delivery.id)
        const beforeHeld = yield* claim("third", 10, 30_000, 5)
        expect(runsOf(beforeHeld)).toEqual([[[b!.id, "build.queued"]]])
        // ...and before one that is not due yet.
        const retryAt = DateTime.add(yield* now, { hours: 1 })
        expect(
          yield* finish(bFinished!, yield* attempt({ _tag: "Retry", at: retryAt }, { statusCode: 500 }))
        ).toBe(true)
        expect(yield* finish(beforeHeld[0]!, yield* delivered)).toBe(true)
        expect(yield* claim("third", 10, 30_000, 5)).toEqual([])
        yield* storage.redeliver(Access.all, bQueued!.delivery.id)
        expect(runsOf(yield* claim("fourth", 10, 30_000, 5))).toEqual([[[b!.id, "build.queued"]]])
      }))

    it("fences a lease: an expired one is taken over, and its old holder's result is refused", () =>
      Effect.gen(function* () {
        const { storage, workspace, version } = yield* seed()
        yield* endpoint(workspace.id, { types: ["build.queued"] })
        yield* queue(version)
        yield* fanOutAll
        const [held] = yield* claim("a", 1, 1)
        yield* Effect.sleep("20 millis")
        const [taken] = yield* claim("b", 1)
        expect(taken!.delivery.id).toBe(held!.delivery.id)
        expect(taken!.fence).not.toEqual(held!.fence)
        expect(yield* finish(held!, yield* delivered)).toBe(false)
        expect((yield* storage.getDelivery(Access.all, held!.delivery.id)).attempts).toBe(0)
        expect(yield* finish(taken!, yield* delivered)).toBe(true)
        const done = yield* storage.getDelivery(Access.all, taken!.delivery.id)
        expect(done).toMatchObject({
          status: "delivered",
          attempts: 1,
          lastStatusCode: 200,
          nextAttemptAt: null
        })
        expect(done.deliveredAt).not.toBeNull()
        expect(yield* finish(taken!, yield* delivered)).toBe(false)
      }))

    it("records a sender's batch in one call, answering for each attempt in order", () =>
      Effect.gen(function* () {
        const { storage, workspace, version } = yield* seed()
        const hook = yield* endpoint(workspace.id, { types: ["build.queued"] })
        yield* queue(version, 3)
        yield* fanOutAll
        const [stale] = yield* claim("a", 1, 1)
        yield* Effect.sleep("20 millis")
        const [first, second, third] = yield* claim("b", 3)
        expect(first!.delivery.id).toBe(stale!.delivery.id)
        const retryAt = DateTime.add(yield* now, { hours: 1 })
        const failing = (statusCode: number, disable: string | null = null) =>
          attempt({ _tag: "Retry", at: retryAt }, { statusCode, error: `HTTP ${statusCode}`, disable })
        const recorded = yield* storage.finishDeliveries([
          { id: first!.delivery.id, fence: first!.fence, attempt: yield* delivered },
          { id: stale!.delivery.id, fence: stale!.fence, attempt: yield* delivered },
          { id: second!.delivery.id, fence: second!.fence, attempt: yield* failing(500) },
          { id: third!.delivery.id, fence: third!.fence, attempt: yield* failing(410, "answered 410 Gone") }
        ])
        expect(recorded).toEqual([true, false, true, true])
        const [one, two, three] = yield* Effect.forEach([first, second, third], (c) =>
          storage.getDelivery(Access.all, c!.delivery.id)
        )
        expect(one).toMatchObject({ status: "delivered", attempts: 1, lastStatusCode: 200 })
        expect(two).toMatchObject({
          status: "pending",
          attempts: 1,
          lastStatusCode: 500,
          lastError: "HTTP 500"
        })
        expect(three).toMatchObject({ status: "pending", attempts: 1, lastStatusCode: 410 })
        expect(DateTime.toEpochMillis(two.nextAttemptAt!)).toBe(DateTime.toEpochMillis(retryAt))
        expect(yield* storage.getWebhook(Access.all, hook.id)).toMatchObject({
          enabled: false,
          disabledReason: "answered 410 Gone"
        })
        expect(yield* storage.finishDeliveries([])).toEqual([])
      }))

    it("disables an endpoint when an attempt says so, keeping its backlog for when it is enabled", () =>
      Effect.gen(function* () {
        const { storage, workspace, version } = yield* seed()
        const hook = yield* endpoint(workspace.id, { types: ["build.queued"] })
        yield* queue(version, 2)
        yield* fanOutAll
        const [gone] = yield* claim("sender", 1)
        yield* finish(
          gone!,
          yield* attempt({ _tag: "Retry", at: yield* now }, { statusCode: 410, disable: "answered 410 Gone" })
        )
        expect(yield* storage.getWebhook(Access.all, hook.id)).toMatchObject({
          enabled: false,
          disabledReason: "answered 410 Gone"
        })
        expect(yield* claim("sender")).toEqual([])
        const enabled = yield* storage.updateWebhook(Access.all, hook.id, { enabled: true })
        expect(enabled).toMatchObject({ enabled: true, disabledReason: null })
        expect((yield* claim("sender")).length).toBe(2)
      }))

    it("signs with the previous secret too until its time is up", () =>
      Effect.gen(function* () {
        const { storage, workspace, version } = yield* seed()
        const hook = yield* endpoint(workspace.id, { types: ["build.queued"] })
        yield* queue(version, 2)
        yield* fanOutAll
        yield* storage.rotateWebhookSecret(Access.all, hook.id, {
          secret: secret(4),
          previousValidUntil: DateTime.add(yield* now, { milliseconds: 300 })
        })
        const [during] = yield* claim("sender", 1)
        expect(during!.secrets).toEqual([secret(4), secret(1)])
        yield* finish(during!, yield* delivered)
        yield* Effect.sleep("400 millis")
        const [later] = yield* claim("sender", 1)
        expect(later!.secrets).toEqual([secret(4)])
      }))

    it("queues a ping for one endpoint outside the feed, and redelivers with the same event", () =>
      Effect.gen(function* () {
        const { storage, workspace } = yield* seed()
        const hook = yield* endpoint(workspace.id)
        const quiet = yield* endpoint(workspace.id)
        const before = (yield* readAll()).length
        const ping = Event.ping(yield* Id.generate("msg"), workspace.id, hook.id, yield* now)
        const queued = yield* storage.enqueuePing(Access.all, hook.id, ping)
        expect(queued).toMatchObject({
          webhookId: hook.id,
          eventId: ping.id,
          eventType: "ping",
          status: "pending"
        })
        expect((yield* readAll()).length).toBe(before)
        const [claimed] = yield* claim("sender")
        expect(claimed!.delivery.id).toBe(queued.id)
        expect(JSON.parse(claimed!.body)).toMatchObject({ type: "ping", id: ping.id })
        yield* finish(claimed!, yield* delivered)
        expect(yield* storage.listDeliveries(Access.all, quiet.id, { before: null, limit: 10 })).toEqual([])
        const again = yield* storage.redeliver(Access.all, queued.id)
        expect(again).toMatchObject({ status: "pending", eventId: ping.id, deliveredAt: null })
        const [resent] = yield* claim("sender")
        expect(resent!.body).toBe(claimed!.body)
        const foreign = Access.workspaces([])
        expect((yield* Effect.flip(storage.enqueuePing(foreign, hook.id, ping)))._tag).toBe("StorageNotFound")
        expect((yield* Effect.flip(storage.redeliver(foreign, queued.id)))._tag).toBe("StorageNotFound")
        expect((yield* Effect.flip(storage.getDelivery(foreign, queued.id)))._tag).toBe("StorageNotFound")
      }))

    it("pages an endpoint's deliveries newest first, and deletes them with it", () =>
      Effect.gen(function* () {
        const { storage, workspace, version } = yield* seed()
        const hook = yield* endpoint(workspace.id, { types: ["build.queued"] })
        yield* queue(version, 5)
        yield* fanOutAll
        const whole = yield* storage.listDeliveries(Access.all, hook.id, { before: null, limit: 100 })
        expect(whole.length).toBe(5)
        const subjects = (yield* readAll(Access.all, 100, ["build.queued"])).map((e) => e.subject)
        expect(whole.map((d) => d.subject)).toEqual(subjects.reverse())
        const firstPage = yield* storage.listDeliveries(Access.all, hook.id, { before: null, limit: 2 })
        const nextPage = yield* storage.listDeliveries(Access.all, hook.id, {
          before: firstPage[1]!.id,
          limit: 2
        })
        expect([...firstPage, ...nextPage]).toEqual(whole.slice(0, 4))
        // A `before` that is not one of this endpoint's deliveries has nothing before it.
        const other = yield* endpoint(workspace.id, { types: ["build.queued"] })
        yield* queue(version)
        yield* fanOutAll
        const [theirs] = yield* storage.listDeliveries(Access.all, other.id, { before: null, limit: 1 })
        for (const before of [theirs!.id, Schema.decodeSync(Id.DeliveryId)(`dlv_${"0".repeat(26)}`)]) {
          expect(yield* storage.listDeliveries(Access.all, hook.id, { before, limit: 2 })).toEqual([])
        }
        expect(
          (yield* Effect.flip(
            storage.listDeliveries(Access.workspaces([]), hook.id, { before: null, limit: 2 })
          ))._tag
        ).toBe("StorageNotFound")
        yield* storage.deleteWebhook(Access.all, hook.id)
        expect((yield* Effect.flip(storage.getDelivery(Access.all, whole[0]!.id)))._tag).toBe(
          "StorageNotFound"
        )
        expect((yield* claim("sender")).filter((c) => c.delivery.webhookId === hook.id)).toEqual([])
      }))
  })
