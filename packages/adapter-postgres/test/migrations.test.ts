import { readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { expect, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import pg from "pg"
import { describe } from "vitest"
import { open } from "../src/internal/connection.ts"
import { migrate, migrations } from "../src/internal/migrations.ts"
import * as PgTesting from "../src/testing.ts"
import { freshSchema, sql, storageOn } from "./fixtures.ts"
import { schemaDump } from "./schemaDump.ts"

/** What `kiln_migrations` lists, read with a connection of its own. */
const recorded = (schema: string) =>
  sql<{ version: number; name: string; applied_at: string }>(
    `SELECT version, name, applied_at FROM ${pg.escapeIdentifier(schema)}.kiln_migrations ORDER BY version`
  )

const known = migrations.map(({ version, name }) => ({ version, name }))

/** Migrates `schema` on a connection of its own and answers the versions it applied. */
const migrateOnce = (schema: string, defined = migrations) =>
  Effect.scoped(
    Effect.flatMap(open({ connectionString: PgTesting.databaseUrl(), schema, poolSize: 1 }), (db) =>
      migrate(db, schema, defined)
    )
  )

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
      yield* migrateOnce(schema, newer)
      const error = yield* Effect.flip(openStorage(schema))
      expect(error).toMatchObject({ _tag: "StorageError", reason: "Corrupt" })
      expect(error.message).toContain("from_the_future")
    }).pipe(Effect.scoped)
  )

  it.live("matches the committed schema dump (run with KILN_UPDATE_SCHEMA=1 after adding a migration)", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      yield* migrateOnce(schema)
      const header =
        "-- Generated from the migrations by test/migrations.test.ts; do not edit.\n" +
        "-- Read from the catalog, so it shows what PostgreSQL made of them (types, constraint names).\n\n"
      const dump = header + (yield* schemaDump(schema))
      const file = fileURLToPath(new URL("../schema.sql", import.meta.url))
      if (process.env.KILN_UPDATE_SCHEMA === "1") writeFileSync(file, dump)
      expect(dump).toBe(readFileSync(file, "utf8"))
    }).pipe(Effect.scoped)
  )

  it.live("dumps the same schema when migrated again, and under a name that needs quoting", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      expect(yield* migrateOnce(schema)).toEqual(migrations.map(({ version }) => version))
      const first = yield* schemaDump(schema)
      expect(yield* migrateOnce(schema)).toEqual([])
      expect(yield* schemaDump(schema)).toBe(first)
      const quoted = yield* Effect.acquireRelease(
        Effect.sync(() => `${PgTesting.uniqueSchema()} "Odd" Name`),
        (name) => sql(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(name)} CASCADE`)
      )
      yield* migrateOnce(quoted)
      expect(yield* schemaDump(quoted)).toBe(first)
    }).pipe(Effect.scoped)
  )
})
