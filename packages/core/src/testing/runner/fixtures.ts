/**
 * Shared setup for the runner suites: run specs for the `commands` strategy (the one every runner
 * supports the same way), a source context, and helpers to follow a run's events.
 */
import { gzipSync } from "node:zlib"
import { it } from "@effect/vitest"
import { DateTime, Effect, Fiber, type Layer, Queue, type Scope, Stream } from "effect"
import * as App from "../../App.ts"
import * as AppVersion from "../../AppVersion.ts"
import * as Id from "../../Id.ts"
import { type Event, write } from "../../internal/tar.ts"
import { type EnvironmentVariable, Runner, type RunnerEvent, type RunSpec } from "../../Runner.ts"
import type { RunnerError } from "../../RunnerError.ts"
import type { SourceError } from "../../SourceError.ts"

export interface RunnerSuiteOptions {
  /** The image the commands run in (a real runner pulls nothing: it must exist locally). */
  readonly builderImage?: string
  /** How long a run may take to stop and clean up once interrupted. */
  readonly stopWithinMs?: number
}

export type MakeRunner = () => Layer.Layer<Runner, unknown>

/** Registers a test that runs against a fresh runner, on the real clock. */
export const test =
  (make: MakeRunner) =>
  (name: string, body: () => Effect.Effect<void, unknown, Runner | Scope.Scope>, timeout = 60_000) =>
    it.live(name, () => Effect.provide(body(), make()), timeout)

const encoder = new TextEncoder()

/** An uncompressed tar of the given files, as a context stream. */
export const contextOf = (files: Readonly<Record<string, string>>): Stream.Stream<Uint8Array, SourceError> =>
  write(
    Stream.fromIterable(
      Object.entries(files).flatMap(([path, text]): ReadonlyArray<Event> => {
        const data = encoder.encode(text)
        return [
          {
            _tag: "Entry",
            header: { path, type: "file", linkTarget: "", size: data.length, mode: 0o644, mtime: 0 }
          },
          { _tag: "Data", bytes: data },
          { _tag: "EntryEnd" }
        ]
      })
    )
  )

/** The same files as an uploaded archive is: a gzipped tar, whole. */
export const archiveOf = (files: Readonly<Record<string, string>>): Effect.Effect<Uint8Array, SourceError> =>
  Stream.runCollect(contextOf(files)).pipe(
    Effect.map((chunks) => gzipSync(Buffer.concat(chunks.map((chunk) => Buffer.from(chunk)))))
  )

let builds = 0

/** A commands-strategy run of the given scripts, with a fresh build id. */
export const specOf = (
  options: RunnerSuiteOptions,
  scripts: {
    readonly build: string
    readonly deploy?: string
    readonly environment?: ReadonlyArray<EnvironmentVariable>
    readonly context?: Stream.Stream<Uint8Array, SourceError>
  }
): RunSpec => {
  const n = ++builds
  const hex = (prefix: string) =>
    `0190b3a0-0000-7000-8${prefix}-${Date.now().toString(16).padStart(12, "0").slice(-12)}`
  const at = DateTime.makeUnsafe(0)
  const workspaceId = Id.fromUuid("wsp", hex("001"))!
  const app = App.make(
    Id.fromUuid("app", hex("002"))!,
    {
      workspaceId,
      handle: "conformance",
      name: "Runner conformance",
      kind: "app",
      build: {
        ...App.defaultBuildSettings,
        strategy: "commands",
        builderImage: options.builderImage ?? App.defaultBuildSettings.builderImage,
        buildCommand: scripts.build,
        deployCommand: scripts.deploy ?? null
      }
    },
    at
  )
  const version = AppVersion.make(
    Id.fromUuid("ver", hex("003"))!,
    workspaceId,
    {
      appId: app.id,
      source: { type: "git", url: "https://git.example.com/conformance.git", commitSha: "c".repeat(40) }
    },
    at
  )
  return {
    buildId: Id.fromUuid("bld", hex(String(100 + (n % 900))))!,
    workspaceId,
    owner: `conformance-${process.pid}`,
    attempt: 1,
    app,
    version,
    context: scripts.context ?? contextOf({ "README.md": "hello from the source\n" }),
    environment: scripts.environment ?? []
  }
}

/** Every event of a run that ends, and how it ended. */
export const runToEnd = (spec: RunSpec) =>
  Effect.gen(function* () {
    const runner = yield* Runner
    const events: Array<RunnerEvent> = []
    const exit = yield* runner.run(spec).pipe(
      Stream.runForEach((event) => Effect.sync(() => events.push(event))),
      Effect.exit
    )
    return { events, exit }
  })

/**
 * Starts a run in the background. `waitFor` resolves at the first log line equal to `text` (a line that
 * merely mentions it, such as the command that will print it, does not count); `seen` holds what it read
 * on the way; `interrupt` stops the run and answers how long that, with its cleanup, took.
 */
export const runInBackground = (spec: RunSpec) =>
  Effect.gen(function* () {
    const runner = yield* Runner
    const events = yield* Queue.unbounded<RunnerEvent>()
    const seen: Array<RunnerEvent> = []
    const fiber = yield* runner.run(spec).pipe(
      Stream.runForEach((event) => Queue.offer(events, event)),
      Effect.forkChild
    )
    const waitFor = (text: string) =>
      Effect.gen(function* () {
        while (true) {
          const event = yield* Queue.take(events)
          seen.push(event)
          if (event._tag === "Log" && event.text === text) return event
        }
      }).pipe(Effect.timeout("60 seconds"))
    const interrupt = Effect.gen(function* () {
      const started = Date.now()
      yield* Fiber.interrupt(fiber)
      return Date.now() - started
    })
    return { fiber: fiber as Fiber.Fiber<void, RunnerError>, waitFor, seen, interrupt }
  })

export const logText = (events: ReadonlyArray<RunnerEvent>, step?: string) =>
  events.flatMap((event) =>
    event._tag === "Log" && event.stream !== "system" && (step === undefined || event.step === step)
      ? [event.text]
      : []
  )
