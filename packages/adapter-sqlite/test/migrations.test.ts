import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { Storage } from "@kiln/core"
import Database from "better-sqlite3"
import { Clock, Effect } from "effect"
import { afterAll, describe } from "vitest"
import { SqliteStorage } from "../src/index.ts"
import { open } from "../src/internal/connection.ts"
import { migrate, migrations } from "../src/internal/migrations.ts"
import { runScript } from "./fixtures/runScript.ts"

const dir = mkdtempSync(join(tmpdir(), "kiln-sqlite-migrations-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let files = 0
const tempFile = () => join(dir, `migrations-${++files}.db`)

/** What `kiln_migrations` lists, read with a connection of its own. */
const recorded = (filename: string) => {
  const db = new Database(filename, { readonly: true })
  try {
    return db
      .prepare("SELECT version, name, applied_at FROM kiln_migrations ORDER BY version")
      .all() as Array<{
      version: number
      name: string
      applied_at: number
    }>
  } finally {
    db.close()
  }
}

const known = migrations.map(({ version, name }) => ({ version, name }))

/** Opens the file as a storage, writes through it once, and closes it again. */
const openStorage = (filename: string) =>
  Storage.Storage.use((storage) => storage.createWorkspace({ name: "w" })).pipe(
    Effect.provide(SqliteStorage.layer({ filename }))
  )

describe("sqlite migrations", () => {
  it.live("applies each migration once when the same file is opened again", () =>
    Effect.gen(function* () {
      const filename = tempFile()
      const before = yield* Clock.currentTimeMillis
      yield* openStorage(filename)
      yield* openStorage(filename)
      const rows = recorded(filename)
      expect(rows.map(({ version, name }) => ({ version, name }))).toEqual(known)
      expect(rows.every((row) => row.applied_at >= before)).toBe(true)
    })
  )

  it.live("applies each migration once when two layers open the same new file together", () =>
    Effect.gen(function* () {
      const filename = tempFile()
      const both = Effect.all([openStorage(filename), openStorage(filename)], { concurrency: 2 })
      expect((yield* both).length).toBe(2)
      expect(recorded(filename).map(({ version, name }) => ({ version, name }))).toEqual(known)
    })
  )

  it.live(
    "applies each migration exactly once when four processes open the same new file at the same moment",
    () =>
      Effect.gen(function* () {
        const filename = tempFile()
        const startAt = String((yield* Clock.currentTimeMillis) + 1000)
        const children = yield* Effect.all(
          Array.from({ length: 4 }, () => runScript("./migrator.ts", [filename, startAt])),
          { concurrency: "unbounded" }
        )
        for (const child of children) {
          expect(child.stderr).toBe("")
          expect(child.code).toBe(0)
        }
        const applied = children.flatMap((child) => JSON.parse(child.stdout) as Array<number>)
        expect(applied.toSorted((a, b) => a - b)).toEqual(known.map((m) => m.version))
        expect(recorded(filename).map(({ version, name }) => ({ version, name }))).toEqual(known)
      }),
    60_000
  )

  it.live("refuses a database migrated by a newer version of Kiln as Corrupt", () =>
    Effect.gen(function* () {
      const filename = tempFile()
      const newer = [
        ...migrations,
        { version: migrations.length + 1, name: "from_the_future", sql: "SELECT 1" }
      ]
      yield* Effect.scoped(
        Effect.flatMap(open({ filename, busyTimeoutMs: 1000 }), (db) => migrate(db, 0, newer))
      )
      const error = yield* Effect.flip(openStorage(filename))
      expect(error).toMatchObject({ _tag: "StorageError", reason: "Corrupt" })
      expect(error.message).toContain("from_the_future")
    })
  )
})
