/**
 * What the dispatch and latency benchmarks share: a PostgreSQL to run on, a runner that does no work
 * (each build still goes claim → running → one log line → completed), and an app with a ready version.
 */
import { PgStorage } from "@kiln/adapter-postgres"
import * as PgTesting from "@kiln/adapter-postgres/testing"
import { Access, App, Runner, Storage } from "@kiln/core"
import { Effect, Layer, References, Stream } from "effect"
import pg from "pg"

/** `KILN_TEST_DATABASE_URL`'s server, or a throwaway one for the life of the scope. */
export const postgres = Effect.acquireRelease(
  Effect.promise(async () =>
    process.env.KILN_TEST_DATABASE_URL !== undefined
      ? { url: process.env.KILN_TEST_DATABASE_URL, stop: async () => {} }
      : await PgTesting.startServer()
  ),
  (server) => Effect.promise(server.stop)
).pipe(Effect.map((server) => server.url))

/** Kiln's Postgres storage in a schema of its own, dropped when the scope closes. */
export const pgStorage = (url: string, schema: string = PgTesting.uniqueSchema("kiln_bench")) =>
  PgStorage.layer({ connectionString: url, schema }).pipe(
    Layer.provideMerge(
      Layer.effectDiscard(
        Effect.addFinalizer(() =>
          Effect.promise(async () => {
            const client = new pg.Client({ connectionString: url })
            await client.connect()
            await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
            await client.end()
          })
        )
      )
    )
  )

/** Kiln's progress lines would be most of what a benchmark does: only warnings and errors are printed. */
export const quiet = Layer.succeed(References.MinimumLogLevel, "Warn")

/** A runner with nothing to do: one log line, then success. */
export const noopRunner = Layer.succeed(Runner.Runner, {
  run: () =>
    Stream.succeed<Runner.RunnerEvent>({ _tag: "Log", stream: "stdout", step: null, text: "nothing to do" }),
  ping: Effect.void,
  resources: Effect.succeed([]),
  sweep: () => Effect.succeed([])
})

/** A workspace with `apps` apps (one by default) and a ready version of each. */
export const seedVersions = (apps = 1) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const workspace = yield* storage.createWorkspace({ name: "bench" })
    return yield* Effect.forEach(
      Array.from({ length: apps }, (_, n) => n),
      (n) =>
        Effect.flatMap(
          storage.createApp(Access.all, {
            workspaceId: workspace.id,
            handle: n === 0 ? "noop" : `noop-${n}`,
            name: "No-op",
            kind: "app",
            build: { ...App.defaultBuildSettings, strategy: "commands", buildCommand: "true" }
          }),
          (app) =>
            storage.createAppVersion(Access.all, {
              appId: app.id,
              source: { type: "git", url: "https://git.example.com/noop.git", commitSha: "e".repeat(40) }
            })
        )
    )
  })

/** A workspace with one app and a ready version of it. */
export const seedVersion = Effect.map(seedVersions(), (versions) => versions[0]!)

export const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

export const median = (values: ReadonlyArray<number>) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50
  )
