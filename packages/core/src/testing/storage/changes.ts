import { describe, expect } from "@effect/vitest"
import { Clock, DateTime, Effect, Fiber, Stream } from "effect"
import * as Access from "../../Access.ts"
import { type BuildChange, isBuildChange } from "../../Change.ts"
import { claimOne, type MakeStorage, queue, seed, test } from "./fixtures.ts"

/** Change notifications: a subscriber hears about builds and log lines written after it subscribed. */
export const changes = (name: string, make: MakeStorage) =>
  describe(`${name} › storage: change notifications`, () => {
    const it = test(make)

    it("tells a subscriber about a build's creation, claim, cancel request, logs and stop", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        const heard = yield* storage.changes
        const collector = yield* heard.pipe(
          Stream.filter(isBuildChange),
          Stream.filter((change) => change._tag === "LogsAppended" || change.phase !== "running"),
          Stream.take(6),
          Stream.runCollect,
          Effect.timeout("10 seconds"),
          Effect.forkChild
        )
        const [build] = yield* queue(version)
        const { fence } = yield* claimOne("engine")
        yield* storage.requestCancel(Access.all, build!.id, "stop")
        const at = DateTime.makeUnsafe(yield* Clock.currentTimeMillis)
        yield* storage.appendLogs(build!.id, fence, [
          { seq: 1, ts: at, stream: "stdout", step: null, text: "a" },
          { seq: 2, ts: at, stream: "stdout", step: null, text: "b" }
        ])
        yield* storage.transition(build!.id, { _tag: "Stopped", at, ...fence })
        const other = yield* queue(version)
        const received = yield* Fiber.join(collector)
        const forBuild = received.filter((change) => change.buildId === build!.id)
        const summary = (change: BuildChange) =>
          change._tag === "LogsAppended"
            ? `logs:${change.lastSeq}`
            : `${change.phase}${change.cancelRequested ? "+cancel" : ""}`
        expect(forBuild.map(summary)).toEqual([
          "queued",
          "initializing",
          "initializing+cancel",
          "logs:2",
          "stopped+cancel"
        ])
        expect(received.every((change) => change.workspaceId === version.workspaceId)).toBe(true)
        expect(received[5]).toMatchObject({ _tag: "BuildChanged", buildId: other[0]!.id, phase: "queued" })
      }))

    it("gives every subscriber its own copy", () =>
      Effect.gen(function* () {
        const { storage, version } = yield* seed()
        const subscribers = yield* Effect.all([storage.changes, storage.changes, storage.changes])
        const collectors = yield* Effect.forEach(subscribers, (stream) =>
          stream.pipe(
            Stream.filter(isBuildChange),
            Stream.take(2),
            Stream.runCollect,
            Effect.timeout("10 seconds"),
            Effect.forkChild
          )
        )
        const created = yield* queue(version, 2)
        for (const collector of collectors) {
          const received = yield* Fiber.join(collector)
          expect(received.map((change) => change.buildId)).toEqual(created.map((b) => b.id))
        }
      }))
  })
