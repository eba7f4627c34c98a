import { expect, it } from "@effect/vitest"
import { Access, Events, Storage } from "@kiln/core"
import { StorageConformance } from "@kiln/core/testing"
import { Effect, Fiber, Stream } from "effect"

const live = <A, E>(effect: Effect.Effect<A, E, Storage.Storage>) =>
  Effect.provide(effect, Storage.layerMemory())

it.live("replays from a cursor, then follows what is written next, woken by the hint", () =>
  live(
    Effect.gen(function* () {
      const { version } = yield* StorageConformance.seed()
      yield* StorageConformance.queue(version, 2)
      const replayed = yield* Events.stream(Access.all, { pageSize: 2 }).pipe(
        Stream.take(3),
        Stream.runCollect
      )
      expect(replayed.map((event) => event.type)).toEqual([
        "app_version.ready",
        "build.queued",
        "build.queued"
      ])
      // A poll slower than the test: only the hint can deliver these in time.
      const follower = yield* Events.stream(Access.all, {
        after: replayed[0]!.cursor,
        pollInterval: "1 hour"
      }).pipe(Stream.take(4), Stream.runCollect, Effect.timeout("5 seconds"), Effect.forkChild)
      yield* Effect.sleep("50 millis")
      const [later] = yield* StorageConformance.queue(version)
      yield* (yield* Storage.Storage).requestCancel(Access.all, later!.id, null)
      const followed = yield* Fiber.join(follower)
      expect(followed.map((event) => event.cursor)).toEqual([
        replayed[1]!.cursor,
        replayed[2]!.cursor,
        followed[2]!.cursor,
        followed[3]!.cursor
      ])
      expect(followed.slice(2).map((event) => [event.type, event.subject])).toEqual([
        ["build.queued", later!.id],
        ["build.finished", later!.id]
      ])
    })
  )
)

it.live("keeps to the caller's workspaces and the types asked for", () =>
  live(
    Effect.gen(function* () {
      const mine = yield* StorageConformance.seed()
      const other = yield* StorageConformance.seed({ name: "other" })
      yield* StorageConformance.queue(other.version, 3)
      yield* StorageConformance.queue(mine.version, 1)
      const seen = yield* Events.stream(Access.workspaces([mine.workspace.id]), {
        types: ["build.queued"]
      }).pipe(Stream.take(1), Stream.runCollect)
      expect(seen.map((event) => [event.workspaceId, event.type])).toEqual([
        [mine.workspace.id, "build.queued"]
      ])
    })
  )
)
