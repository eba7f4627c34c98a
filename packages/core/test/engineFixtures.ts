/** What the engine tests share: an engine on memory storage with the scripted runner, and an app to build. */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "@effect/vitest"
import { Access, App, AppVersion, type Build, Engine, Runner, SourceStore, Storage } from "@kiln/core"
import { RunnerConformance } from "@kiln/core/testing"
import { Effect, Layer, Stream } from "effect"

export const dir = mkdtempSync(join(tmpdir(), "kiln-engine-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Records the order of storage writes, and can stop notifications or heartbeats to test fallbacks. */
export interface Spy {
  readonly calls: Array<string>
  readonly appendSizes: Array<number>
}

export interface SpyOptions {
  readonly silent?: boolean
  readonly frozenHeartbeats?: boolean
  /** The first write of lines and state changes fails, the storage saying why. */
  readonly firstWriteFails?: Storage.StorageErrorReason
}

const spying = (spy: Spy, options: SpyOptions) =>
  Layer.effect(
    Storage.Storage,
    Effect.gen(function* () {
      const inner = yield* Storage.Storage
      const spied: Storage.StorageShape = Storage.Storage.of({
        ...inner,
        appendLogs: (id, fence, lines) => {
          spy.calls.push(`append:${lines.length}`)
          spy.appendSizes.push(lines.length)
          return inner.appendLogs(id, fence, lines)
        },
        transition: (id, event) => {
          spy.calls.push(`transition:${event._tag}`)
          return inner.transition(id, event)
        },
        heartbeat: (id, fence, leaseMs) =>
          options.frozenHeartbeats ? Effect.never : inner.heartbeat(id, fence, leaseMs),
        changes: options.silent ? Effect.succeed(Stream.empty) : inner.changes
      })
      // A write of lines and state changes, seen as the calls it stands for after its own entry.
      let failing = options.firstWriteFails
      return {
        ...spied,
        // Seen when it runs, not when it is made, so that a retry of the same write is seen again.
        appendAndTransition: (id, fence, lines, events) =>
          Effect.suspend(() => {
            spy.calls.push(`write:${lines.length}:${events.map((event) => event._tag).join("+")}`)
            if (failing !== undefined) {
              const reason = failing
              failing = undefined
              return Effect.fail(new Storage.StorageError({ reason, message: `the write failed: ${reason}` }))
            }
            const [first, ...rest] = events
            return Effect.gen(function* () {
              if (lines.length > 0) yield* spied.appendLogs(id, fence, lines)
              let build = yield* spied.transition(id, first)
              for (const event of rest) build = yield* spied.transition(id, event)
              return build
            })
          })
      } satisfies Storage.StorageShape
    })
  )

/** Memory storage (spied on, when given a spy), the scripted runner and a source store. */
export const services = (spy?: Spy, options: SpyOptions = {}) => {
  const storage =
    spy === undefined
      ? Storage.layerMemory()
      : spying(spy, options).pipe(Layer.provide(Storage.layerMemory()))
  return Layer.mergeAll(storage, Runner.layerTest, SourceStore.layer({ directory: dir }))
}

/** The options the engine tests run with, fast polls and reaps, besides their own. */
export const engineLayer = (engine: Engine.EngineOptions = {}) =>
  Engine.layer({ cancelPollMs: 100, reapIntervalMs: 100, pollIntervalMs: 100, ...engine })

export const setup = (engine: Engine.EngineOptions = {}, spy?: Spy, options: SpyOptions = {}) =>
  engineLayer(engine).pipe(Layer.provideMerge(services(spy, options)))

/** A commands app with an archive version, ready to build. */
export const appWith = (build: string, settings: Partial<App.BuildSettings> = {}) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const sources = yield* SourceStore.SourceStore
    const workspace = yield* storage.createWorkspace({ name: "acme" })
    const app = yield* storage.createApp(Access.all, {
      workspaceId: workspace.id,
      handle: `app-${Math.random().toString(36).slice(2, 8)}`,
      name: "App",
      kind: "app",
      build: { ...App.defaultBuildSettings, strategy: "commands", buildCommand: build, ...settings }
    })
    const stored = yield* sources.putArchive(
      Stream.fromEffect(RunnerConformance.archiveOf({ "README.md": "hello\n" }))
    )
    const version = yield* storage.createAppVersion(Access.all, {
      appId: app.id,
      source: { type: "archive" }
    })
    yield* storage.resolveAppVersion(Access.all, version.id, AppVersion.archiveStored(stored))
    const queue = (n = 1, triggerMetadata: Build.Metadata | null = null) =>
      Effect.forEach(Array.from({ length: n }), () =>
        storage.createBuild(Access.all, {
          appVersionId: version.id,
          trigger: triggerMetadata === null ? "manual" : "auto",
          createdBy: "test",
          triggerMetadata
        })
      )
    return { storage, app, version, queue }
  })
