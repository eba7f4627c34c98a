/** Shared setup for the Postgres-specific tests: a schema of the test database, and plain queries on it. */
import { Access, App, type AppVersion, type Storage, type StorageError } from "@kiln/core"
import { Effect, type Scope } from "effect"
import pg from "pg"
import * as PgStorage from "../src/PgStorage.ts"
import * as PgTesting from "../src/testing.ts"

/** Runs one statement on a connection of its own, outside any storage. */
export const sql = <Row = Record<string, unknown>>(text: string, values: ReadonlyArray<unknown> = []) =>
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: PgTesting.databaseUrl() })
    await client.connect()
    try {
      return (await client.query(text, [...values])).rows as Array<Row>
    } finally {
      await client.end()
    }
  })

/** A schema name for this test, dropped with everything in it when the scope closes. */
export const freshSchema: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => PgTesting.uniqueSchema()),
  (schema) => sql(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`)
)

/** A storage on `schema` of the test database, for the life of the scope. */
export const storageOn = (
  schema: string,
  options: Omit<PgStorage.Options, "connectionString" | "schema"> = {}
): Effect.Effect<Storage.StorageShape, StorageError.StorageError, Scope.Scope> =>
  PgStorage.make({ ...options, connectionString: PgTesting.databaseUrl(), schema })

/** A workspace with an app per handle, each with one ready version. */
export const seed = (
  storage: Storage.StorageShape,
  name = "acme",
  handles: ReadonlyArray<string> = ["web"]
) =>
  Effect.gen(function* () {
    const workspace = yield* storage.createWorkspace({ name })
    const versions = yield* Effect.forEach(handles, (handle) =>
      Effect.flatMap(
        storage.createApp(Access.all, {
          workspaceId: workspace.id,
          handle,
          name: handle,
          kind: "app",
          build: App.defaultBuildSettings
        }),
        (app) =>
          storage.createAppVersion(Access.all, {
            appId: app.id,
            source: { type: "git", url: `https://git.example.com/${handle}.git`, commitSha: "a".repeat(40) }
          })
      )
    )
    return { workspace, versions }
  })

/** Queues `count` builds of a version. */
export const queue = (storage: Storage.StorageShape, version: AppVersion.AppVersion, count = 1) =>
  Effect.forEach(Array.from({ length: count }), () =>
    storage.createBuild(Access.all, { appVersionId: version.id, trigger: "manual", createdBy: null })
  )
