/**
 * Webhook delivery end to end, for every storage: the engine (with the scripted runner) runs builds, and
 * a real receiver on 127.0.0.1 verifies each delivery with the `standardwebhooks` library. Faults — a
 * receiver that fails, hangs, goes away, answers 410 — must cost retries, never an event. Every test
 * counts the duplicates the receiver saw and prints them: at-least-once delivery may repeat, and the
 * figure says how often.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Clock, DateTime, type Duration, Effect, Layer, type Scope, Stream } from "effect"
import * as Access from "../Access.ts"
import * as App from "../App.ts"
import * as AppVersion from "../AppVersion.ts"
import * as Engine from "../Engine.ts"
import type * as Event from "../Event.ts"
import type * as Id from "../Id.ts"
import * as Runner from "../Runner.ts"
import * as SourceStore from "../SourceStore.ts"
import { Storage } from "../Storage.ts"
import { StorageError } from "../StorageError.ts"
import * as Webhook from "../Webhook.ts"
import { stopped } from "./Builds.ts"
import { contextOf } from "./runner/fixtures.ts"
import type { MakeStorage } from "./storage/fixtures.ts"
import * as WebhookReceiver from "./WebhookReceiver.ts"

/** Fast retries and a short attempt timeout, so a fault costs milliseconds in a test. */
export const testDelivery: Engine.WebhookDeliveryOptions = {
  timeoutMs: 300,
  pollIntervalMs: 50,
  leaseMs: 2_000,
  // 9 attempts over about 3.5 s: longer than the faults the suite stages.
  retrySchedule: {
    delays: [
      "20 millis",
      "50 millis",
      "100 millis",
      "200 millis",
      "400 millis",
      "800 millis",
      "1 second",
      "1 second"
    ]
  }
}

/** An engine over the storage with the scripted runner, sending webhooks to this host's own addresses. */
export const engineLayer = (
  make: MakeStorage,
  directory: string,
  webhooks: Engine.WebhookDeliveryOptions = testDelivery,
  options: Omit<Engine.EngineOptions, "webhooks"> = {}
) =>
  Engine.layer({ pollIntervalMs: 50, reapIntervalMs: 200, ...options, webhooks }).pipe(
    Layer.provideMerge(Layer.mergeAll(make(), Runner.layerTest, SourceStore.layer({ directory }))),
    Layer.provide(Layer.succeed(Webhook.Addresses, { allowPrivate: true }))
  )

/** A workspace with a commands app and a ready archive version, and an endpoint for the receiver. */
export const setUp = (receiver: WebhookReceiver.Receiver, secret: Webhook.Secret) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const sources = yield* SourceStore.SourceStore
    const workspace = yield* storage.createWorkspace({ name: "hooks" })
    const webhook = yield* storage.createWebhook(Access.all, {
      workspaceId: workspace.id,
      url: receiver.url,
      types: [],
      enabled: true,
      secret
    })
    const app = yield* storage.createApp(Access.all, {
      workspaceId: workspace.id,
      handle: "web",
      name: "Web",
      kind: "app",
      build: { ...App.defaultBuildSettings, strategy: "commands", buildCommand: "echo built" }
    })
    const archive = yield* Stream.runCollect(contextOf({ "README.md": "hi\n" }))
    const gzipped = gzipSync(Buffer.concat(archive.map((chunk) => Buffer.from(chunk))))
    const stored = yield* sources.putArchive(Stream.make(new Uint8Array(gzipped)))
    const version = yield* storage.createAppVersion(Access.all, {
      appId: app.id,
      source: { type: "archive" }
    })
    yield* storage.resolveAppVersion(Access.all, version.id, AppVersion.archiveStored(stored))
    const build = (count: number) =>
      Effect.forEach(Array.from({ length: count }), () =>
        storage.createBuild(Access.all, { appVersionId: version.id, trigger: "manual", createdBy: "hooks" })
      )
    return { storage, workspace, webhook, build }
  })

/** Every event in the feed, in feed order. */
const feed = Storage.use((storage) =>
  storage.readEvents(Access.all, { after: null, types: null, limit: 100_000 })
)

export interface Tally {
  readonly events: number
  readonly lost: number
  readonly duplicates: number
  readonly outOfOrder: number
  readonly unverified: number
  /** Arrivals whose `webhook-id` is not the id of the event they carry. */
  readonly mislabelled: number
  /** Arrivals that came while another request with their `webhook-id` was still open. */
  readonly overlapping: number
}

/**
 * Holds what the receiver acknowledged against the feed: every event at least once, each subject's events
 * first acknowledged in feed order, every arrival verified and labelled with its event's id, none sent
 * twice at once.
 */
export const tally = (events: ReadonlyArray<Event.Stored>, receiver: WebhookReceiver.Receiver): Tally => {
  const acknowledged = receiver.acknowledged()
  const firstAt = new Map<string, number>()
  acknowledged.forEach((arrival, index) => {
    if (!firstAt.has(arrival.id)) firstAt.set(arrival.id, index)
  })
  let outOfOrder = 0
  const lastBySubject = new Map<string, number>()
  for (const event of events) {
    const at = firstAt.get(event.id)
    if (at === undefined) continue
    if ((lastBySubject.get(event.subject) ?? -1) > at) outOfOrder += 1
    lastBySubject.set(event.subject, at)
  }
  return {
    events: events.length,
    lost: events.filter((event) => !firstAt.has(event.id)).length,
    duplicates: acknowledged.length - firstAt.size,
    outOfOrder,
    unverified: receiver.arrivals.filter((arrival) => !arrival.verified).length,
    mislabelled: receiver.arrivals.filter((arrival) => bodyId(arrival.body) !== arrival.id).length,
    overlapping: receiver.arrivals.filter((arrival) => arrival.overlapped).length
  }
}

const bodyId = (body: string): unknown => {
  try {
    return (JSON.parse(body) as { readonly id?: unknown }).id
  } catch {
    return undefined
  }
}

/** Waits until the receiver has acknowledged every event in the feed. */
export const allAcknowledged = (receiver: WebhookReceiver.Receiver, timeout: Duration.Input = "30 seconds") =>
  Effect.gen(function* () {
    while (true) {
      const events = yield* feed
      const seen = new Set(receiver.acknowledged().map((arrival) => arrival.id))
      if (events.every((event) => seen.has(event.id))) return events
      yield* Effect.sleep("20 millis")
    }
  }).pipe(Effect.timeout(timeout))

/**
 * Waits until the receiver has acknowledged every event of the feed (30 s at most), prints the tally after
 * `title` (duplicates are allowed: at least once), and holds it: nothing lost, out of order, unverified,
 * mislabelled or sent twice at once, and the endpoint's delivery log has each event once, delivered.
 */
/**
 * An endpoint's delivery log once every delivery in it is recorded as delivered, or as it stands after 10 s:
 * a sender records an attempt in its next round, after the receiver has answered it.
 */
const deliveredLog = (webhookId: Webhook.Webhook["id"], limit: number) =>
  Effect.gen(function* () {
    const read = Storage.use((storage) =>
      storage.listDeliveries(Access.all, webhookId, { before: null, limit })
    )
    let log = yield* read
    for (let waited = 0; waited < 10_000 && !log.every((d) => d.status === "delivered"); waited += 20) {
      yield* Effect.sleep("20 millis")
      log = yield* read
    }
    return log
  })

export const expectAllDelivered = (
  title: string,
  receiver: WebhookReceiver.Receiver,
  webhookId: Webhook.Webhook["id"]
) =>
  Effect.gen(function* () {
    // Past the wait the tally is still taken, so a failure says what went missing, not just "timed out".
    const events = yield* allAcknowledged(receiver).pipe(Effect.catchTag("TimeoutError", () => feed))
    const counted = tally(events, receiver)
    console.info(`${title}: ${JSON.stringify(counted)}`)
    expect(counted).toMatchObject({ lost: 0, outOfOrder: 0, unverified: 0, mislabelled: 0, overlapping: 0 })
    const log = yield* deliveredLog(webhookId, events.length + 1)
    expect(log.length).toBe(events.length)
    expect(log.every((delivery) => delivery.status === "delivered")).toBe(true)
    return { events, counted }
  })

export const delivery = (name: string, make: MakeStorage) =>
  describe(`${name} › webhooks: delivery`, () => {
    const directory = mkdtempSync(join(tmpdir(), "kiln-webhooks-"))
    afterAll(() => rmSync(directory, { recursive: true, force: true }))
    const test = (
      title: string,
      body: () => Effect.Effect<void, unknown, Storage | SourceStore.SourceStore | Scope.Scope>
    ) => it.live(title, () => Effect.scoped(Effect.provide(body(), engineLayer(make, directory))), 60_000)
    const report = (title: string, counted: Tally) =>
      Effect.sync(() => console.log(`${name} › ${title}: ${JSON.stringify(counted)}`))

    test("delivers every event once, signed, in order per build", () =>
      Effect.gen(function* () {
        const secret = Webhook.generateSecret()
        const receiver = yield* WebhookReceiver.start([secret])
        const { build } = yield* setUp(receiver, secret)
        const builds = yield* build(10)
        for (const queued of builds) yield* stopped(queued.id)
        const events = yield* allAcknowledged(receiver)
        const counted = tally(events, receiver)
        yield* report("no faults", counted)
        expect(counted).toMatchObject({ lost: 0, outOfOrder: 0, unverified: 0, duplicates: 0 })
        // Each build's whole life arrives: queued, running, started, steps, finished.
        const types = (id: Id.BuildId) =>
          events.filter((event) => event.subject === id).map((event) => event.type)
        expect(types(builds[0]!.id)[0]).toBe("build.queued")
        expect(types(builds[0]!.id).at(-1)).toBe("build.finished")
        expect(types(builds[0]!.id)).toContain("build.step.finished")
        const body = JSON.parse(receiver.acknowledged().find((a) => a.id === events.at(-1)!.id)!.body)
        expect(body).toMatchObject({
          id: events.at(-1)!.id,
          type: events.at(-1)!.type,
          data: events.at(-1)!.data
        })
      }))

    test("rides out a receiver that fails, hangs past the timeout, and goes away, losing nothing", () =>
      Effect.gen(function* () {
        const secret = Webhook.generateSecret()
        const receiver = yield* WebhookReceiver.start([secret])
        receiver.setMode("fail")
        const { build } = yield* setUp(receiver, secret)
        const builds = yield* build(5)
        yield* Effect.sleep("300 millis")
        receiver.setMode("hang")
        yield* Effect.sleep("700 millis")
        yield* receiver.goDown
        yield* Effect.sleep("400 millis")
        receiver.setMode("ok")
        yield* receiver.resume
        for (const queued of builds) yield* stopped(queued.id)
        const events = yield* allAcknowledged(receiver)
        const counted = tally(events, receiver)
        yield* report("500, hang, down", counted)
        expect(counted).toMatchObject({ lost: 0, outOfOrder: 0, unverified: 0 })
        expect(receiver.arrivals.some((arrival) => arrival.status === 500)).toBe(true)
        expect(receiver.arrivals.some((arrival) => arrival.status === 0)).toBe(true)
        const storage = yield* Storage
        const [webhook] = yield* storage.listWebhooks(Access.all, null)
        const deliveries = yield* deliveredLog(webhook!.id, 1000)
        expect(deliveries.every((d) => d.status === "delivered")).toBe(true)
        expect(deliveries.some((d) => d.attempts > 1 && d.lastStatusCode === 204)).toBe(true)
      }))

    it.live(
      "gives back the rest of a build's run when an attempt fails, so it goes once the first does, not at lease end",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const secret = Webhook.generateSecret()
            const receiver = yield* WebhookReceiver.start([secret])
            receiver.setMode("fail")
            const { webhook, build } = yield* setUp(receiver, secret)
            const [queued] = yield* build(1)
            yield* stopped(queued!.id)
            // Each retry of the build's first event leases its whole run; the failure gives the rest back.
            const failed = () => receiver.arrivals.filter((arrival) => arrival.status === 500).length
            const before = failed()
            yield* Effect.sleep("20 millis").pipe(Effect.repeat({ until: () => failed() >= before + 2 }))
            receiver.setMode("ok")
            // Leases last a minute here: anything kept leased past its run's failure would miss the wait.
            yield* expectAllDelivered(`${name} › run given back`, receiver, webhook.id)
          }).pipe(Effect.provide(engineLayer(make, directory, { ...testDelivery, leaseMs: 60_000 })))
        ),
      60_000
    )

    it.live(
      "records the rest of a batch that storage refuses for one attempt, and sends that one again",
      () => {
        const refused: { subject?: string } = {}
        return Effect.scoped(
          Effect.gen(function* () {
            const secret = Webhook.generateSecret()
            const receiver = yield* WebhookReceiver.start([secret])
            const { webhook, build } = yield* setUp(receiver, secret)
            for (const queued of yield* build(4)) yield* stopped(queued.id)
            const others = (events: ReadonlyArray<Event.Stored>) =>
              events.filter((e) => e.subject !== refused.subject)
            // Every other build's events are delivered and recorded, though each batch had the refused one.
            const recorded = Effect.gen(function* () {
              yield* Effect.sleep("20 millis")
              const events = yield* feed
              const log = yield* Storage.use((storage) =>
                storage.listDeliveries(Access.all, webhook.id, { before: null, limit: 100 })
              )
              const delivered = new Set(log.filter((d) => d.status === "delivered").map((d) => d.eventId))
              return { events, log, done: others(events).every((event) => delivered.has(event.id)) }
            })
            const { events, log } = yield* Effect.repeat(recorded, { until: ({ done }) => done }).pipe(
              Effect.timeout("30 seconds")
            )
            const seen = new Set(receiver.acknowledged().map((arrival) => arrival.id))
            // The refused one was sent, and stays pending: its lease runs out and it goes again.
            const [refusedFirst] = events.filter((event) => event.subject === refused.subject)
            expect(seen.has(refusedFirst!.id)).toBe(true)
            expect(log.find((d) => d.eventId === refusedFirst!.id)?.status).toBe("pending")
          }).pipe(Effect.provide(engineLayer(refusing(make, refused), directory)))
        )
      },
      60_000
    )

    test("disables an endpoint that answers 410 Gone, and delivers its backlog once it is enabled again", () =>
      Effect.gen(function* () {
        const secret = Webhook.generateSecret()
        const receiver = yield* WebhookReceiver.start([secret])
        receiver.setMode("gone")
        const { storage, webhook, build } = yield* setUp(receiver, secret)
        const [queued] = yield* build(1)
        yield* stopped(queued!.id)
        const disabled = yield* waitFor(storage.getWebhook(Access.all, webhook.id), (w) => !w.enabled)
        expect(disabled.disabledReason).toContain("410")
        const arrivedWhileGone = receiver.arrivals.length
        yield* Effect.sleep("200 millis")
        expect(receiver.arrivals.length).toBe(arrivedWhileGone)
        receiver.setMode("ok")
        yield* storage.updateWebhook(Access.all, webhook.id, { enabled: true })
        const events = yield* allAcknowledged(receiver)
        const counted = tally(events, receiver)
        yield* report("410 then enabled", counted)
        expect(counted).toMatchObject({ lost: 0, outOfOrder: 0, unverified: 0 })
      }))

    test("disables an endpoint that keeps failing, with a reason, keeping the rest of its backlog", () =>
      Effect.gen(function* () {
        const secret = Webhook.generateSecret()
        const receiver = yield* WebhookReceiver.start([secret])
        receiver.setMode("fail")
        const { storage, webhook, build } = yield* setUp(receiver, secret)
        yield* build(1)
        const disabled = yield* waitFor(storage.getWebhook(Access.all, webhook.id), (w) => !w.enabled)
        expect(disabled.disabledReason).toMatch(/kept failing: 9 attempts.*HTTP 500/)
        const deliveries = yield* storage.listDeliveries(Access.all, webhook.id, { before: null, limit: 100 })
        // Two subjects (the version and the build) fail side by side: the first to use up its attempts
        // disables the endpoint, and on a loaded machine the other may use up its own at the same moment.
        const failed = deliveries.filter((d) => d.status === "failed")
        expect(failed.length).toBeGreaterThanOrEqual(1)
        expect(new Set(failed.map((d) => d.subject)).size).toBe(failed.length)
        for (const one of failed) {
          expect(one).toMatchObject({ attempts: 9, lastStatusCode: 500, nextAttemptAt: null })
        }
        expect(deliveries.filter((d) => d.status === "pending").length).toBe(
          deliveries.length - failed.length
        )
      }))

    test("signs with both secrets while a rotation's old one is valid", () =>
      Effect.gen(function* () {
        const oldSecret = Webhook.generateSecret()
        const newSecret = Webhook.generateSecret()
        const receiver = yield* WebhookReceiver.start([oldSecret])
        const { storage, webhook, build } = yield* setUp(receiver, oldSecret)
        yield* storage.rotateWebhookSecret(Access.all, webhook.id, {
          secret: newSecret,
          previousValidUntil: DateTime.add(DateTime.makeUnsafe(yield* Clock.currentTimeMillis), {
            minutes: 1
          })
        })
        const [queued] = yield* build(1)
        yield* stopped(queued!.id)
        yield* allAcknowledged(receiver)
        // The receiver still holding the old secret verified everything; one holding only the new would too.
        expect(receiver.arrivals.every((arrival) => arrival.verified)).toBe(true)
        receiver.setSecrets([newSecret])
        const [next] = yield* build(1)
        yield* stopped(next!.id)
        const events = yield* allAcknowledged(receiver)
        expect(tally(events, receiver)).toMatchObject({ lost: 0, unverified: 0 })
      }))

    it.live(
      "refuses to send to a private address unless the host allows it",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const secret = Webhook.generateSecret()
            const receiver = yield* WebhookReceiver.start([secret])
            const { storage, webhook, build } = yield* setUp(receiver, secret)
            yield* build(1)
            const disabled = yield* waitFor(storage.getWebhook(Access.all, webhook.id), (w) => !w.enabled)
            expect(disabled.disabledReason).toMatch(/refused: 127\.0\.0\.1 is a loopback address/)
            expect(receiver.arrivals).toEqual([])
          }).pipe(
            Effect.provide(
              Engine.layer({ pollIntervalMs: 50, webhooks: testDelivery }).pipe(
                Layer.provideMerge(Layer.mergeAll(make(), Runner.layerTest, SourceStore.layer({ directory })))
              )
            )
          )
        ),
      60_000
    )
  })

/**
 * The storage, refusing outright (not retryable) every batch of attempts with one at the build of the first
 * attempt it is asked to record, which it names in `refused`.
 */
const refusing =
  (make: MakeStorage, refused: { subject?: string }): MakeStorage =>
  (options) =>
    Layer.effect(
      Storage,
      Storage.use((inner) =>
        Effect.succeed({
          ...inner,
          finishDeliveries: (batch: ReadonlyArray<Webhook.FinishedDelivery>) =>
            Effect.flatMap(
              Effect.forEach(batch, (one) =>
                inner.getDelivery(Access.all, one.id).pipe(
                  Effect.map((delivery) => {
                    refused.subject ??= delivery.subject
                    return delivery.subject === refused.subject
                  }),
                  Effect.orElseSucceed(() => false)
                )
              ),
              (hits) =>
                hits.includes(true)
                  ? Effect.fail(new StorageError({ reason: "Unknown", message: "refused by the test" }))
                  : inner.finishDeliveries(batch)
            )
        })
      )
    ).pipe(Layer.provide(make(options)))

/** Polls `read` every 20 ms until `done` holds (10 s at most). */
const waitFor = <A, E, R>(read: Effect.Effect<A, E, R>, done: (a: A) => boolean) =>
  Effect.gen(function* () {
    while (true) {
      const value = yield* read
      if (done(value)) return value
      yield* Effect.sleep("20 millis")
    }
  }).pipe(Effect.timeout("10 seconds"))
