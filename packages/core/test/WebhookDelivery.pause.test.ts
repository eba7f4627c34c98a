/**
 * The delivery loop's pace when events have no endpoint to go to (`webhookDelivery.ts`): a unit test of the
 * loop against a storage that always has one more event to move and nothing to claim, on the test clock.
 * That deliveries still go out at once is `WebhookConformance.delivery`'s, on every storage.
 */
import { it } from "@effect/vitest"
import { Metrics, type Storage, Webhook } from "@kiln/core"
import { Effect, Stream } from "effect"
import { TestClock } from "effect/testing"
import { expect } from "vitest"
import { deliveryLoop } from "../src/internal/engine/webhookDelivery.ts"
import { defaultSchedule } from "../src/internal/webhooks/retrySchedule.ts"

const settle = Effect.repeat(Effect.yieldNow, { times: 50 })

it.effect("pauses between rounds once three in a row only moved events past the cursor", () =>
  Effect.gen(function* () {
    let fanOuts = 0
    let claims = 0
    const storage = {
      changes: Effect.succeed(Stream.never),
      fanOutEvents: () =>
        Effect.sync(() => {
          fanOuts += 1
          return 1
        }),
      claimDeliveries: () =>
        Effect.sync(() => {
          claims += 1
          return []
        }),
      finishDeliveries: () => Effect.succeed([])
    } as unknown as Storage.StorageShape
    yield* deliveryLoop({
      storage,
      owner: "pace",
      policy: yield* Webhook.policy,
      concurrency: 4,
      leaseMs: 60_000,
      timeoutMs: 10_000,
      maxResponseBytes: 1024,
      retrySchedule: defaultSchedule,
      pollIntervalMs: 1000,
      metrics: Metrics.none
    })
    yield* settle
    expect([fanOuts, claims]).toEqual([3, 3])
    yield* TestClock.adjust("49 millis")
    yield* settle
    expect(fanOuts).toBe(3)
    yield* TestClock.adjust("1 millis")
    yield* settle
    expect([fanOuts, claims]).toEqual([4, 4])
    yield* TestClock.adjust("50 millis")
    yield* settle
    expect(fanOuts).toBe(5)
  }).pipe(Effect.scoped)
)
