import { expect, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import pg from "pg"
import { describe } from "vitest"
import { open } from "../src/internal/connection.ts"
import { migrate, migrations } from "../src/internal/migrations.ts"
import * as PgTesting from "../src/testing.ts"
import { freshSchema, sql, storageOn } from "./fixtures.ts"

/** What `kiln_migrations` lists, read with a connection of its own. */
const recorded = (schema: string) =>
  sql<{ version: number; name: string; applied_at: string }>(
    `SELECT version, name, applied_at FROM ${pg.escapeIdentifier(schema)}.kiln_migrations ORDER BY version`
  )

const known = migrations.map(({ version, name }) => ({ version, name }))

/** Opens a storage on the schema, writes through it once, and closes it again. */
const openStorage = (schema: string) =>
  Effect.scoped(Effect.flatMap(storageOn(schema), (storage) => storage.createWorkspace({ name: "w" })))

describe("postgres migrations", () => {
  it.live("applies each migration once when the same schema is opened again", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      const before = yield* Clock.currentTimeMillis
      yield* openStorage(schema)
      yield* openStorage(schema)
      const rows = yield* recorded(schema)
      expect(rows.map(({ version, name }) => ({ version, name }))).toEqual(known)
      // Recorded on the database's clock.
      expect(rows.every((row) => Math.abs(Number(row.applied_at) - before) < 60_000)).toBe(true)
    }).pipe(Effect.scoped)
  )

  it.live("lets 8 storages start together on one new schema, applying each migration exactly once", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      const started = yield* Effect.all(
        Array.from({ length: 8 }, () => openStorage(schema)),
        { concurrency: "unbounded" }
      )
      expect(started.length).toBe(8)
      expect((yield* recorded(schema)).map(({ version, name }) => ({ version, name }))).toEqual(known)
      const workspaces = yield* sql<{ n: string }>(
        `SELECT count(*) AS n FROM ${pg.escapeIdentifier(schema)}.workspaces`
      )
      expect(Number(workspaces[0]!.n)).toBe(8)
    }).pipe(Effect.scoped)
  )

  it.live("refuses a schema migrated by a newer version of Kiln as Corrupt", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      const newer = [
        ...migrations,
        { version: migrations.length + 1, name: "from_the_future", sql: "SELECT 1" }
      ]
      yield* Effect.scoped(
        Effect.flatMap(open({ connectionString: PgTesting.databaseUrl(), schema, poolSize: 1 }), (db) =>
          migrate(db, schema, newer)
        )
      )
      const error = yield* Effect.flip(openStorage(schema))
      expect(error).toMatchObject({ _tag: "StorageError", reason: "Corrupt" })
      expect(error.message).toContain("from_the_future")
    }).pipe(Effect.scoped)
  )
})
