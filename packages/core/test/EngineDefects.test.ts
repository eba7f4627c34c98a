/**
 * An engine whose storage has a bug keeps working around it: a claim that dies (a defect, not a storage
 * error) is logged, and the engine claims again on its next poll rather than never again.
 */
import { expect, it } from "@effect/vitest"
import { Storage } from "@kiln/core"
import { Builds } from "@kiln/core/testing"
import { Effect, Layer } from "effect"
import { appWith, engineLayer, services } from "./engineFixtures.ts"

it.live("claims again after a claim round died", () =>
  Effect.gen(function* () {
    let calls = 0
    const dyingOnce = Layer.effect(
      Storage.Storage,
      Storage.Storage.use((storage) =>
        Effect.succeed<Storage.StorageShape>({
          ...storage,
          claimNext: (request) =>
            Effect.suspend(() => {
              calls += 1
              return calls === 1 ? Effect.die(new Error("a storage bug")) : storage.claimNext(request)
            })
        })
      )
    )
    const [build] = yield* (yield* appWith("echo done")).queue()
    yield* Effect.scoped(
      Effect.gen(function* () {
        yield* Layer.build(engineLayer().pipe(Layer.provide(dyingOnce)))
        const stopped = yield* Builds.stopped(build!.id, "10 seconds")
        expect(stopped.status).toBe("completed")
      })
    )
    expect(calls).toBeGreaterThan(1)
  }).pipe(Effect.provide(services()))
)
