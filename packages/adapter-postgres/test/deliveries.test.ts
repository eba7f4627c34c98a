import { expect, it } from "@effect/vitest"
import { Access, type Storage, Webhook } from "@kiln/core"
import { Effect, Schema } from "effect"
import pg from "pg"
import { describe } from "vitest"
import { freshSchema, queue, seed, sql, storageOn } from "./fixtures.ts"

const secret = Schema.decodeSync(Webhook.Secret)(`whsec_${Buffer.alloc(32, 1).toString("base64")}`)

/** Two storages (two pools, as two processes would have) on one schema, with an endpoint and `builds` queued. */
const twoProcesses = (builds: number) =>
  Effect.gen(function* () {
    const schema = yield* freshSchema
    const storages = [yield* storageOn(schema), yield* storageOn(schema)] as const
    const { workspace, versions } = yield* seed(storages[0])
    const hook = yield* storages[0].createWebhook(Access.all, {
      workspaceId: workspace.id,
      url: "https://hooks.example.com/kiln",
      types: ["build.queued"],
      enabled: true,
      secret
    })
    yield* queue(storages[0], versions[0]!, builds)
    return { schema, storages, hook }
  })

/** Runs `body` on eight fibers, four on each storage, and collects what they answer. */
const onBoth = <A>(
  storages: ReadonlyArray<Storage.StorageShape>,
  body: (storage: Storage.StorageShape, n: number) => Effect.Effect<ReadonlyArray<A>, unknown>
) =>
  Effect.map(
    Effect.all(
      Array.from({ length: 8 }, (_, n) => body(storages[n % 2]!, n)),
      { concurrency: "unbounded" }
    ),
    (answers) => answers.flat()
  )

describe("postgres deliveries across processes", () => {
  it.live("fans each event out once while two storages fan out together", () =>
    Effect.gen(function* () {
      const { schema, storages, hook } = yield* twoProcesses(60)
      yield* onBoth(storages, (storage) =>
        Effect.gen(function* () {
          // Small steps, so the fan-outs meet; one that finds another in progress moves nothing.
          for (let i = 0; i < 40; i++) yield* storage.fanOutEvents(3)
          return []
        })
      )
      while ((yield* storages[0].fanOutEvents(100)) > 0) {}
      const [counted] = yield* sql<{ deliveries: number; events: number }>(
        `SELECT count(*)::int AS deliveries, count(DISTINCT event_id)::int AS events
         FROM ${pg.escapeIdentifier(schema)}.webhook_deliveries WHERE webhook_id = $1`,
        [hook.id]
      )
      expect(counted).toEqual({ deliveries: 60, events: 60 })
    }).pipe(Effect.scoped)
  )

  it.live("never leases one delivery to two senders while its lease lives", () =>
    Effect.gen(function* () {
      const { storages } = yield* twoProcesses(60)
      while ((yield* storages[0].fanOutEvents(100)) > 0) {}
      // Every build is a subject of its own, so all 60 are due at once.
      const claimed = yield* onBoth(storages, (storage, n) =>
        Effect.gen(function* () {
          const mine: Array<string> = []
          while (true) {
            const batch = yield* storage.claimDeliveries({ owner: `sender-${n}`, leaseMs: 60_000, max: 2 })
            if (batch.length === 0) return mine
            mine.push(...batch.map((c) => c.delivery.id))
          }
        })
      )
      expect(claimed.length).toBe(60)
      expect(new Set(claimed).size).toBe(60)
    }).pipe(Effect.scoped)
  )
})
