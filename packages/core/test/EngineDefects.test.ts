/**
 * An engine whose storage has a bug keeps working around it: a claim that dies (a defect, not a storage
 * error) is logged, and the engine claims again on its next poll rather than never again. One whose
 * settings could not work does not start.
 */
import { expect, it } from "@effect/vitest"
import { BuildState, Storage } from "@kiln/core"
import { Builds } from "@kiln/core/testing"
import { Cause, Effect, Exit, Layer } from "effect"
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

it.live("refuses to start with an owner storages could not index, saying so", () =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(
      Effect.scoped(Layer.build(engineLayer({ owner: "é".repeat(BuildState.maxTextBytes) })))
    )
    expect(Exit.isFailure(exit) && Cause.pretty(exit.cause)).toContain(
      "engine owner: expected 1 to 1024 bytes"
    )
    const fits = yield* Effect.exit(Effect.scoped(Layer.build(engineLayer({ owner: "é".repeat(512) }))))
    expect(Exit.isSuccess(fits)).toBe(true)
  }).pipe(Effect.provide(services()))
)
