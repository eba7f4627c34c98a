/**
 * Two Kiln processes on one PostgreSQL deliver webhooks together: both send, no delivery is sent by both
 * at once, and every event of the feed reaches the receiver, verified, with its own `webhook-id`, each
 * build's in order — also when one of them is killed with SIGKILL midway and the other finishes alone.
 * Duplicates are allowed (at least once) and printed; a lost event is not.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { expect, it } from "@effect/vitest"
import { SourceStore, Storage, Webhook } from "@kiln/core"
import { Builds, EngineProcess, WebhookConformance, WebhookReceiver } from "@kiln/core/testing"
import { Effect } from "effect"
import { afterAll } from "vitest"
import { freshSchema, storageOn } from "./fixtures.ts"

const sources = mkdtempSync(join(tmpdir(), "kiln-pg-webhook-processes-"))
afterAll(() => rmSync(sources, { recursive: true, force: true }))
const script = fileURLToPath(new URL("./fixtures/webhookEngine.ts", import.meta.url))

const builds = 300
/** Distinct events acknowledged before a kill: some, far from all (a build makes about 6). */
const killAfter = 300

/**
 * A receiver with an endpoint, two engine processes on a fresh schema, and `builds` queued; with `killOne`,
 * the first process is killed with SIGKILL once `killAfter` events have arrived. The processes are
 * killed, and the schema dropped, when the test ends.
 */
const test = (title: string, { killOne }: { readonly killOne: boolean }) =>
  it.live(
    title,
    () =>
      Effect.gen(function* () {
        const schema = yield* freshSchema
        const storage = yield* storageOn(schema)
        yield* Effect.gen(function* () {
          const secret = Webhook.generateSecret()
          const receiver = yield* WebhookReceiver.start([secret])
          // Each request stays open a while, so a delivery sent by both processes at once shows as an overlap.
          receiver.setLatency(20)
          const { webhook, build } = yield* WebhookConformance.setUp(receiver, secret)
          const acknowledged = () => new Set(receiver.acknowledged().map((arrival) => arrival.id)).size
          const processes = yield* Effect.all(
            [EngineProcess.start(script, [schema, sources]), EngineProcess.start(script, [schema, sources])],
            { concurrency: 2 }
          )
          const queued = yield* build(builds)
          let beforeKill: number | undefined
          if (killOne) {
            while (acknowledged() < killAfter) yield* Effect.sleep("5 millis")
            yield* processes[0]!.kill
            beforeKill = acknowledged()
          }
          for (const { id } of queued) yield* Builds.stopped(id)
          const { events } = yield* WebhookConformance.expectAllDelivered(
            `postgres, ${title}`,
            receiver,
            webhook.id
          )
          const sent = processes.map((child) => child.sent.length)
          console.info(
            `postgres, ${title}: requests per process: ${sent.join(" and ")}` +
              (beforeKill === undefined ? "" : `; ${beforeKill} events acknowledged before the kill`)
          )
          // Both sent: the work was shared, not left to whichever process came first.
          for (const count of sent) expect(count).toBeGreaterThan(0)
          // The kill came midway: what arrived after it, the survivor sent.
          if (beforeKill !== undefined) expect(beforeKill).toBeLessThan(events.length)
        }).pipe(Effect.provideService(Storage.Storage, storage))
      }).pipe(Effect.scoped, Effect.provide(SourceStore.layer({ directory: sources }))),
    60_000
  )

test("two processes both deliver, never the same delivery at once, losing nothing", { killOne: false })
test("one of two processes killed -9 midway: the other delivers the rest, losing nothing", { killOne: true })
