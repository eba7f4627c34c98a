/**
 * A process delivering webhooks from a SQLite file is killed with SIGKILL while deliveries are in flight;
 * a new process (a new owner) starts on the same file. What the dead one held comes back when its leases
 * lapse: every event of the feed reaches the receiver, verified, with its own `webhook-id`, each build's
 * in order. Duplicates are allowed (the dead one may have been answered without recording it) and
 * printed; a lost event is not.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { expect, it } from "@effect/vitest"
import { Access, SourceStore, Storage, Webhook } from "@kiln/core"
import { Builds, EngineProcess, WebhookConformance, WebhookReceiver } from "@kiln/core/testing"
import { Effect, Layer } from "effect"
import { afterAll } from "vitest"
import { SqliteStorage } from "../src/index.ts"

const dir = mkdtempSync(join(tmpdir(), "kiln-sqlite-webhook-crash-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const filename = join(dir, "kiln.db")
const sources = join(dir, "sources")
const script = fileURLToPath(new URL("./fixtures/webhookEngine.ts", import.meta.url))

const builds = 150
/** Distinct events acknowledged before the kill: some, far from all (a build makes about 6). */
const killAfter = 150

it.live(
  "a process killed -9 mid-delivery loses no event: a new process takes its leases over",
  () =>
    Effect.gen(function* () {
      const secret = Webhook.generateSecret()
      const receiver = yield* WebhookReceiver.start([secret])
      // Each request stays open a while, so the kill finds some in flight, and a delivery sent twice at
      // once (by the dead process and the new one) would show as an overlap.
      receiver.setLatency(20)
      const { webhook, build } = yield* WebhookConformance.setUp(receiver, secret)
      const queued = yield* build(builds)
      const acknowledged = () => new Set(receiver.acknowledged().map((arrival) => arrival.id))

      const first = yield* EngineProcess.start(script, [filename, sources])
      while (acknowledged().size < killAfter) yield* Effect.sleep("5 millis")
      yield* first.kill
      const before = acknowledged()
      // Answered, but the dead process did not live to record it: sent again later, a duplicate.
      const storage = yield* Storage.Storage
      const unrecorded = (yield* storage.listDeliveries(Access.all, webhook.id, {
        before: null,
        limit: 10_000
      })).filter((delivery) => delivery.status !== "delivered" && before.has(delivery.eventId)).length

      const second = yield* EngineProcess.start(script, [filename, sources])
      for (const { id } of queued) yield* Builds.stopped(id)
      const { events } = yield* WebhookConformance.expectAllDelivered(
        "sqlite, kill -9 mid-delivery",
        receiver,
        webhook.id
      )
      console.info(
        `sqlite, kill -9 mid-delivery: ${before.size} events acknowledged before the kill, ${unrecorded} ` +
          `of them not recorded by the killed process, ${first.sent.length} requests by it, ` +
          `${second.sent.length} by the new process`
      )
      expect(before.size).toBeGreaterThan(0)
      expect(before.size).toBeLessThan(events.length)
      expect(second.sent.length).toBeGreaterThan(0)
    }).pipe(
      Effect.scoped,
      Effect.provide(
        Layer.mergeAll(SqliteStorage.layer({ filename }), SourceStore.layer({ directory: sources }))
      )
    ),
  60_000
)
