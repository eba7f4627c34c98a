/**
 * An idle engine waits: with nothing queued and no events to send, its loops touch storage once a poll
 * interval, not in a loop of their own making. A fan-out that moved nothing once announced new events,
 * which woke the webhook sender that called it, round after round: 20,000 calls in 2 s on memory storage.
 */

import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { Engine, Runner, SourceStore, Storage } from "@kiln/core"
import { Effect, Layer } from "effect"

it.live("touches storage once a poll interval while idle", () =>
  Effect.gen(function* () {
    const calls = { fanOutEvents: 0, claimDeliveries: 0, claimNext: 0 }
    const counting =
      <Args extends ReadonlyArray<unknown>, A, E>(
        name: keyof typeof calls,
        call: (...args: Args) => Effect.Effect<A, E>
      ) =>
      (...args: Args) =>
        Effect.suspend(() => {
          calls[name] += 1
          return call(...args)
        })
    const counted = Layer.effect(
      Storage.Storage,
      Storage.Storage.use((storage) =>
        Effect.succeed<Storage.StorageShape>({
          ...storage,
          fanOutEvents: counting("fanOutEvents", storage.fanOutEvents),
          claimDeliveries: counting("claimDeliveries", storage.claimDeliveries),
          claimNext: counting("claimNext", storage.claimNext)
        })
      )
    ).pipe(Layer.provide(Storage.layerMemory()))
    const engine = Engine.layer({ pollIntervalMs: 200, webhooks: { pollIntervalMs: 200 } }).pipe(
      Layer.provide(
        Layer.mergeAll(
          Runner.layerTest,
          SourceStore.layer({ directory: mkdtempSync(join(tmpdir(), "kiln-idle-")) }),
          counted
        )
      )
    )
    yield* Effect.scoped(Effect.andThen(Layer.build(engine), Effect.sleep("1 second")))
    // Five poll intervals: a few calls each, whatever the machine's speed.
    for (const [name, count] of Object.entries(calls)) expect(count, name).toBeLessThanOrEqual(12)
  })
)
