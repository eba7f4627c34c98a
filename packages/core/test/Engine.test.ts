import { readdirSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import {
  Access,
  App,
  AppVersion,
  Engine,
  Query,
  Runner,
  Secrets,
  SourceStore,
  Storage,
  Trigger
} from "@kiln/core"
import { Builds, RunnerConformance } from "@kiln/core/testing"
import { Effect, Layer, Scope, Stream } from "effect"

import { appWith, dir, type Spy, setup } from "./engineFixtures.ts"

const { until, stopped, logOf } = Builds

describe("Engine", () => {
  it.live("runs a queued build to completion: steps, a gapless log, then the final state", () =>
    Effect.gen(function* () {
      const { queue } = yield* appWith("echo hello; echo world", { deployCommand: "echo deployed" })
      const [build] = yield* queue()
      const done = yield* stopped(build!.id)
      expect(done).toMatchObject({
        status: "completed",
        outcome: "success",
        owner: "engine-test",
        attempt: 1
      })
      expect(done.startedAt).not.toBeNull()
      expect(done.runningAt).not.toBeNull()
      expect(done.steps.map((s) => [s.name, s.status, s.exitCode])).toEqual([
        ["build", "succeeded", 0],
        ["deploy", "succeeded", 0]
      ])
      const lines = yield* logOf(build!.id)
      expect(lines.map((l) => l.seq)).toEqual(lines.map((_, i) => i + 1))
      expect(lines.filter((l) => l.stream !== "system").map((l) => `${l.step}:${l.text}`)).toEqual([
        "build:hello",
        "build:world",
        "deploy:deployed"
      ])
      expect(lines[0]!.text).toContain("claimed by engine-test")
      expect(lines[lines.length - 1]!.text).toBe("[kiln] completed")
    }).pipe(Effect.provide(setup({ owner: "engine-test" })))
  )

  it.live("fails a build whose command fails, with its exit code in the error", () =>
    Effect.gen(function* () {
      const { queue } = yield* appWith("echo before; exit 3")
      const [build] = yield* queue()
      const done = yield* stopped(build!.id)
      expect(done).toMatchObject({
        status: "failed",
        outcome: "failure",
        error: "build command failed with exit code 3"
      })
      expect(done.steps).toMatchObject([{ name: "build", status: "failed", exitCode: 3 }])
      expect((yield* logOf(build!.id)).map((l) => l.text)).toContain(
        "[kiln] failed: build command failed with exit code 3"
      )
    }).pipe(Effect.provide(setup()))
  )

  for (const silent of [false, true]) {
    it.live(
      `cancels a running build within a second, by ${silent ? "polling" : "notification"}, after cleanup`,
      () =>
        Effect.gen(function* () {
          const { storage, queue } = yield* appWith("echo started; sleep 600")
          const [build] = yield* queue()
          yield* until(build!.id, (b) => b.phase === "running")
          const runner = yield* Runner.Runner
          expect((yield* runner.resources).length).toBe(1)
          const before = Date.now()
          yield* storage.requestCancel(Access.all, build!.id, "not needed")
          const done = yield* stopped(build!.id)
          expect(Date.now() - before).toBeLessThan(1_000)
          expect(done).toMatchObject({ status: "cancelled", cancelReason: "not needed" })
          expect(done.steps).toMatchObject([{ name: "build", status: "cancelled" }])
          expect(yield* runner.resources).toEqual([])
          expect((yield* logOf(build!.id)).map((l) => l.text)).toContain("[kiln] cancelled: not needed")
        }).pipe(Effect.provide(setup({}, { calls: [], appendSizes: [] }, { silent })))
    )
  }

  it.live("times a build out, cleaning up first", () =>
    Effect.gen(function* () {
      const { queue } = yield* appWith("echo started; sleep 600", { timeoutMs: 1_000 })
      const [build] = yield* queue()
      const done = yield* stopped(build!.id)
      expect(done).toMatchObject({ status: "failed", outcome: "timed_out", error: "timed out after 1 s" })
      expect(yield* Runner.Runner.use((r) => r.resources)).toEqual([])
    }).pipe(Effect.provide(setup()))
  )

  it.live("runs a build a trigger made with the trigger's build and deploy commands", () =>
    Effect.gen(function* () {
      const { queue } = yield* appWith("echo from the app", { deployCommand: "echo app deploy" })
      const [build] = yield* queue(1, {
        triggerId: null,
        buildCommand: "echo from the trigger",
        deployCommand: "echo trigger deploy"
      })
      expect((yield* stopped(build!.id)).status).toBe("completed")
      const texts = (yield* logOf(build!.id)).filter((l) => l.stream === "stdout").map((l) => l.text)
      expect(texts).toEqual(["from the trigger", "trigger deploy"])
    }).pipe(Effect.provide(setup()))
  )

  it.live(
    "gives a build its trigger's variables, secrets opened with the key and redacted from the log",
    () =>
      Effect.gen(function* () {
        const { storage, app, queue } = yield* appWith("echo mode=$MODE; echo token=$TOKEN")
        const key = yield* Secrets.SecretsKey
        const trigger = yield* storage.createTrigger(
          Access.all,
          Trigger.input(app.id, "with variables", {
            environment: [
              { name: "MODE", secret: false, value: "production" },
              { name: "TOKEN", secret: true, value: Secrets.seal(key.key!, "s3cret-token") }
            ]
          })
        )
        const [build] = yield* queue(1, { triggerId: trigger.id })
        expect((yield* stopped(build!.id)).status).toBe("completed")
        const texts = (yield* logOf(build!.id)).map((l) => l.text)
        expect(texts).toContain("mode=production")
        expect(texts).toContain("token=***")
        expect(JSON.stringify(texts)).not.toContain("s3cret-token")

        // Sealed under another key: the build fails, saying why, and runs nothing.
        const other = yield* storage.createTrigger(Access.all, {
          ...trigger,
          name: "wrong key",
          environment: [{ name: "TOKEN", secret: true, value: Secrets.seal(new Uint8Array(32).fill(7), "x") }]
        })
        const [refused] = yield* queue(1, { triggerId: other.id })
        const failed = yield* stopped(refused!.id)
        expect(failed).toMatchObject({ status: "failed" })
        expect(failed.error).toContain("TOKEN could not be opened")
        expect((yield* logOf(refused!.id)).some((l) => l.text.startsWith("mode="))).toBe(false)
      }).pipe(
        Effect.provide(setup()),
        Effect.provide(Secrets.layer("an engine test key, long enough to use"))
      )
  )

  it.live("runs at most `concurrency` builds at once, and all of them in the end", () =>
    Effect.gen(function* () {
      const { queue, storage } = yield* appWith("sleep 0.2; echo done")
      const builds = yield* queue(6)
      const engine = yield* Engine.Engine
      let most = 0
      while (true) {
        most = Math.max(most, (yield* engine.running).length)
        const page = yield* storage.listBuilds(Access.all, Query.first(10))
        if (page.rows.every((b) => b.phase === "stopped")) break
        yield* Effect.sleep("20 millis")
      }
      expect(most).toBe(2)
      for (const build of builds) expect((yield* stopped(build.id)).status).toBe("completed")
    }).pipe(Effect.provide(setup({ concurrency: 2 })))
  )

  it.live(
    "writes logs in batches of at most 500 lines, and the final state only after the last batch",
    () => {
      const spy: Spy = { calls: [], appendSizes: [] }
      return Effect.gen(function* () {
        const script = Array.from({ length: 12_000 }, (_, i) => `echo line ${i}`).join("\n")
        const { queue } = yield* appWith(script)
        const [build] = yield* queue()
        yield* stopped(build!.id)
        const lines = (yield* logOf(build!.id)).filter((l) => l.stream !== "system")
        expect(lines.map((l) => l.text)).toEqual(Array.from({ length: 12_000 }, (_, i) => `line ${i}`))
        expect(Math.max(...spy.appendSizes)).toBeLessThanOrEqual(500)
        expect(spy.appendSizes.length).toBeLessThan(12_000)
        const lastAppend = spy.calls.map((c) => c.startsWith("append")).lastIndexOf(true)
        expect(spy.calls.indexOf("transition:Succeeded")).toBeGreaterThan(lastAppend)
      }).pipe(Effect.provide(setup({}, spy)))
    }
  )

  it.live("writes a short build's whole record at once, and a long build's lines while it runs", () => {
    const spy: Spy = { calls: [], appendSizes: [] }
    return Effect.gen(function* () {
      const { storage, queue } = yield* appWith("echo hello")
      const [short] = yield* queue()
      yield* stopped(short!.id)
      // Lines wait a second for more here, so only the build's end can have ended the wait.
      const log = yield* logOf(short!.id)
      expect(log.map((line) => line.text)).toContain("hello")
      expect(spy.calls.filter((call) => call.startsWith("write") || call.startsWith("append"))).toEqual([
        `write:${log.length}:Started+Succeeded`,
        `append:${log.length}`
      ])
      const { queue: queueLong } = yield* appWith("echo started; sleep 600")
      const [long] = yield* queueLong()
      yield* until(long!.id, (build) => build.phase === "running")
      expect((yield* logOf(long!.id)).map((line) => line.text)).toContain("started")
      yield* storage.requestCancel(Access.all, long!.id, null)
      yield* stopped(long!.id)
    }).pipe(Effect.provide(setup({ logFlushMs: 1_000 }, spy)))
  })

  it.live("writes again a write that failed where a retry can help, and only such a write", () => {
    const busy: Spy = { calls: [], appendSizes: [] }
    const corrupt: Spy = { calls: [], appendSizes: [] }
    const run = (spy: Spy, reason: Storage.StorageErrorReason) =>
      Effect.gen(function* () {
        const { queue } = yield* appWith("echo hello")
        const [build] = yield* queue()
        expect(yield* stopped(build!.id)).toMatchObject({ status: "completed", outcome: "success" })
        return spy.calls.filter((call) => call.startsWith("write"))
      }).pipe(Effect.provide(setup({ logFlushMs: 1_000 }, spy, { firstWriteFails: reason })))
    return Effect.gen(function* () {
      const retried = yield* run(busy, "Busy")
      expect(retried).toHaveLength(2)
      expect(retried[1]).toBe(retried[0])
      // Not retried: the lines and each state change are written on their own instead.
      const split = yield* run(corrupt, "Corrupt")
      expect(split[1]).not.toBe(split[0])
      expect(split.slice(1)).toEqual(["write:0:Started", "write:0:Succeeded"])
    })
  })

  it.live("never stores a secret value, even printed in pieces", () =>
    Effect.gen(function* () {
      const { queue } = yield* appWith("echo token=$TOKEN; echo -n sup3r-; sleep 0.1; echo s3cret-value")
      const [build] = yield* queue()
      yield* stopped(build!.id)
      const text = (yield* logOf(build!.id)).map((l) => l.text).join("\n")
      expect(text).toContain("token=***")
      expect(text).not.toContain("s3cret")
    }).pipe(
      Effect.provide(
        setup({
          environment: () => Effect.succeed([{ name: "TOKEN", value: "sup3r-s3cret-value", secret: true }])
        })
      )
    )
  )

  it.live("stops a build whose lease was lost, and never overwrites the reaper's verdict", () =>
    Effect.gen(function* () {
      const { queue } = yield* appWith(
        "echo started; sleep 0.3; echo one; sleep 0.3; echo two; sleep 5; echo three"
      )
      const [build] = yield* queue()
      const done = yield* stopped(build!.id)
      expect(done).toMatchObject({ outcome: "lost", status: "failed" })
      // The engine notices at its next fenced write and stops the runner.
      yield* until(build!.id, () => true).pipe(Effect.delay("1500 millis"))
      expect(yield* Runner.Runner.use((r) => r.resources)).toEqual([])
      expect((yield* stopped(build!.id)).outcome).toBe("lost")
      expect((yield* logOf(build!.id)).map((l) => l.text)).not.toContain("three")
    }).pipe(
      Effect.provide(setup({ leaseMs: 300 }, { calls: [], appendSizes: [] }, { frozenHeartbeats: true }))
    )
  )

  it.live("on shutdown lets short builds finish, then cancels the rest with reason shutdown", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(setup({ concurrency: 2, shutdownGraceMs: 500 }), scope)
      const run = <A, E>(effect: Effect.Effect<A, E, Storage.Storage | SourceStore.SourceStore>) =>
        Effect.provide(effect, context)
      const short = yield* run(appWith("echo quick; sleep 0.2"))
      const long = yield* run(appWith("echo slow; sleep 600"))
      const [quick] = yield* run(short.queue())
      const [slow] = yield* run(long.queue())
      yield* run(until(quick!.id, (b) => b.phase === "running"))
      yield* run(until(slow!.id, (b) => b.phase === "running"))
      const before = Date.now()
      yield* Scope.close(scope, { _tag: "Success", value: undefined } as never)
      expect(Date.now() - before).toBeLessThan(3_000)
      const quickDone = yield* short.storage.getBuild(Access.all, quick!.id)
      const slowDone = yield* long.storage.getBuild(Access.all, slow!.id)
      expect(quickDone.status).toBe("completed")
      expect(slowDone).toMatchObject({ status: "cancelled", cancelReason: "shutdown" })
    })
  )
})

describe("Engine archive sweep", () => {
  it.live(
    "removes the stored archives no version names, asking about every name however many versions share one",
    () => {
      const directory = join(dir, "sweep")
      const layer = Engine.layer({ owner: "sweeper", archiveSweepIntervalMs: 100 }).pipe(
        Layer.provideMerge(
          Layer.mergeAll(
            Storage.layerMemory(),
            Runner.layerTest,
            SourceStore.layer({ directory, archiveGracePeriod: "200 millis" })
          )
        )
      )
      return Effect.gen(function* () {
        const storage = yield* Storage.Storage
        const sources = yield* SourceStore.SourceStore
        const workspace = yield* storage.createWorkspace({ name: "acme" })
        const app = yield* storage.createApp(Access.all, {
          workspaceId: workspace.id,
          handle: "web",
          name: "Web",
          kind: "app",
          build: App.defaultBuildSettings
        })
        const store = (text: string) =>
          Effect.flatMap(RunnerConformance.archiveOf({ "README.md": text }), (bytes) =>
            sources.putArchive(Stream.make(bytes))
          )
        const name = (stored: SourceStore.StoredArchive) =>
          Effect.flatMap(
            storage.createAppVersion(Access.all, { appId: app.id, source: { type: "archive" } }),
            (version) => storage.resolveAppVersion(Access.all, version.id, AppVersion.archiveStored(stored))
          )
        const once = yield* store("named once\n")
        const often = yield* store("named often\n")
        yield* store("named by nothing\n")
        // The version of `once` is the oldest, so a single page of the newest versions would miss it.
        yield* name(once)
        yield* Effect.forEach(Array.from({ length: 4 }), () => name(often))
        const names = () => readdirSync(join(directory, "archives")).sort()
        const expected = [once, often].map((stored) => `${stored.sha256}.tar.gz`).sort()
        yield* Effect.sleep("100 millis").pipe(
          Effect.repeat({ until: () => names().length === 2, times: 50 })
        )
        expect(names()).toEqual(expected)
      }).pipe(Effect.provide(layer))
    }
  )
})
