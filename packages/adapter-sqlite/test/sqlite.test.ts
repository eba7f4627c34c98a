import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { expect, it } from "@effect/vitest"
import { Access, Fields, Query, Storage } from "@kiln/core"
import { Sql, SqlRows } from "@kiln/core/adapter"
import { SortIndexes, StorageConformance } from "@kiln/core/testing"
import Database from "better-sqlite3"
import { Clock, DateTime, Effect } from "effect"
import { afterAll, describe } from "vitest"
import { SqliteStorage } from "../src/index.ts"
import { open } from "../src/internal/connection.ts"
import { migrate } from "../src/internal/migrations.ts"
import { prepareStatements } from "../src/internal/statements.ts"

const dir = mkdtempSync(join(tmpdir(), "kiln-sqlite-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let files = 0
const tempFile = () => join(dir, `sqlite-${++files}.db`)

const createWorkspace = Storage.Storage.use((storage) => storage.createWorkspace({ name: "w" }))

interface PlanRow {
  readonly id: number
  readonly parent: number
  readonly detail: string
}

const planOf = (db: Database.Database, statement: Sql.Statement) =>
  db.prepare(`EXPLAIN QUERY PLAN ${statement.text}`).all(...statement.params) as Array<PlanRow>

/**
 * The sorts a page's plan must not have: it sorts the merge of its parts (at most 101 rows from each), and
 * the part of the builds in flight, read from an index of theirs; never a read of the other builds.
 */
const straySorts = (plan: ReadonlyArray<PlanRow>) =>
  plan.filter(
    (row) =>
      row.detail.startsWith("USE TEMP B-TREE") &&
      !/^(LEFT|RIGHT)$/.test(plan.find((other) => other.id === row.parent)?.detail ?? "") &&
      !plan.some(
        (other) => other.parent === row.parent && /USING (COVERING )?INDEX builds_active_/.test(other.detail)
      )
  )

describe("sqlite specifics", () => {
  it.live("serves the hot paths from their partial indexes", () =>
    Effect.gen(function* () {
      const db = yield* open({ filename: ":memory:", busyTimeoutMs: 1000 })
      yield* migrate(db, 0)
      const sql = prepareStatements(db)
      const plan = (source: string, ...params: Array<unknown>) =>
        (db.prepare(`EXPLAIN QUERY PLAN ${source}`).all(...params) as Array<{ detail: string }>)
          .map((row) => row.detail)
          .join("\n")
      expect(plan(sql.queuedOldest.source, 10)).toContain("USING INDEX builds_queued")
      expect(plan(sql.queuedOldest.source, 10)).not.toContain("TEMP B-TREE")
      expect(plan(sql.activeByWorkspace.source)).toContain("builds_active_by_workspace")
      expect(plan(sql.activeByApp.source)).toContain("builds_active_by_app")
      expect(plan(sql.expiredLeases.source, 0)).toContain("builds_active_by_lease")
      expect(plan(sql.logLinesAfter.source, "bld", 0, 10)).toContain("PRIMARY KEY")

      const events = { after: 0n, types: '["build.finished"]', limit: 10 }
      expect(plan(sql.eventsAfter.source, events)).toContain("INTEGER PRIMARY KEY (rowid>?)")
      const workspaceEvents = plan(sql.workspaceEventsAfter.source, { ...events, workspace: "wsp" })
      expect(workspaceEvents).toContain("events_by_workspace (workspace_id=? AND position>?)")
      expect(workspaceEvents).not.toContain("TEMP B-TREE")
      const claim = plan(sql.claimableDeliveries.source, { now: 0, max: 10 })
      expect(claim).toContain("USING INDEX webhook_deliveries_due")
      expect(claim).toContain(
        "webhook_deliveries_pending_subject (webhook_id=? AND subject=? AND position<?)"
      )
      expect(claim).not.toContain("TEMP B-TREE")
      const deliveries = plan(sql.webhookDeliveries.source, { webhook: "whk", below: 10n, limit: 10 })
      expect(deliveries).toContain("webhook_deliveries_by_webhook (webhook_id=? AND position<?)")
      expect(deliveries).not.toContain("TEMP B-TREE")
    }).pipe(Effect.scoped)
  )

  it.live(
    "reads a page ordered on a sort-indexed field from its indexes, in every direction and nulls order",
    () =>
      Effect.gen(function* () {
        const db = yield* open({ filename: ":memory:", busyTimeoutMs: 1000 })
        yield* migrate(db, 0)
        const pages = SortIndexes.pages("sqlite")
        expect(pages.length).toBeGreaterThan(20)
        for (const { label, statement } of pages) {
          const plan = planOf(db, statement)
          const text = plan.map((row) => row.detail).join("\n")
          for (const row of plan) {
            // Every read of the table goes through one of its own indexes: not a scan, nor the primary key
            // read in order with a filter that could pass over every row.
            if (/^(SCAN|SEARCH) t\d+/.test(row.detail)) {
              expect(row.detail, `${label}:\n${text}`).toMatch(/USING (COVERING )?INDEX builds_/)
            }
          }
          expect(straySorts(plan), `${label}:\n${text}`).toEqual([])
        }
      }).pipe(Effect.scoped)
  )

  it.live("reads a shorthand filter's page, newest first, from an index with the field and the order", () =>
    Effect.gen(function* () {
      const db = yield* open({ filename: ":memory:", busyTimeoutMs: 1000 })
      yield* migrate(db, 0)
      for (const { label, index, statement } of SortIndexes.shorthandPages("sqlite")) {
        const plan = planOf(db, statement)
        const text = plan.map((row) => row.detail).join("\n")
        expect(text, label).toContain(`USING INDEX ${index}`)
        expect(straySorts(plan), `${label}:\n${text}`).toEqual([])
      }
    }).pipe(Effect.scoped)
  )

  it.live(
    "analyzes again a database analyzed before a migration added indexes, so pages keep their plans",
    () =>
      Effect.gen(function* () {
        const filename = tempFile()
        const { version } = yield* Effect.tap(StorageConformance.seed(), ({ version }) =>
          StorageConformance.queue(version)
        ).pipe(Effect.provide(SqliteStorage.layer({ filename })))
        yield* Effect.scoped(
          Effect.gen(function* () {
            const db = yield* open({ filename, busyTimeoutMs: 1000 })
            // 2,000 builds of one workspace, and the database as it was before the sort indexes of every
            // field: migration 8 undone, then analyzed.
            const varied: Record<string, string> = {
              id: "'bld_' || i",
              sequence_number: "i + 1",
              created_at: "created_at + i"
            }
            const columns = SqlRows.buildColumns
            db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
            INSERT INTO builds (${columns.join(", ")})
            SELECT ${columns.map((c) => varied[c] ?? c).join(", ")} FROM builds, n`)
            for (const [, index] of SqlRows.moreBuildSortIndexes.matchAll(/CREATE INDEX (\w+)/g)) {
              db.exec(`DROP INDEX ${index}`)
            }
            db.exec(
              "CREATE INDEX builds_by_version ON builds (app_version_id); DELETE FROM kiln_migrations WHERE version = 8; ANALYZE"
            )
            expect(yield* migrate(db, 0)).toEqual([8])
            const query = yield* Query.fromParams(Fields.builds, Access.all, {
              workspace_id: version.workspaceId
            })
            const plan = planOf(db, Sql.compileList("sqlite", Fields.builds, Access.all, query).page)
            const text = plan.map((row) => row.detail).join("\n")
            expect(text).toContain("builds_list_by_workspace")
            expect(straySorts(plan), text).toEqual([])
          })
        )
      })
  )

  it.live("matches the committed schema dump (run with KILN_UPDATE_SCHEMA=1 after adding a migration)", () =>
    Effect.gen(function* () {
      const db = yield* open({ filename: ":memory:", busyTimeoutMs: 1000 })
      yield* migrate(db, 0)
      const statements = db
        .prepare<[], string>("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid")
        .pluck()
        .all()
      const header = "-- Generated from the migrations by test/sqlite.test.ts; do not edit.\n\n"
      const dump = header + statements.map((sql) => `${sql};\n`).join("\n")
      const file = fileURLToPath(new URL("../schema.sql", import.meta.url))
      if (process.env.KILN_UPDATE_SCHEMA === "1") writeFileSync(file, dump)
      expect(dump).toBe(readFileSync(file, "utf8"))
    }).pipe(Effect.scoped)
  )

  it.live("keeps a file database in WAL mode with foreign keys on", () =>
    Effect.gen(function* () {
      const db = yield* open({ filename: tempFile(), busyTimeoutMs: 1000 })
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal")
      expect(db.pragma("foreign_keys", { simple: true })).toBe(1)
      expect(db.pragma("synchronous", { simple: true })).toBe(1)
      expect(db.pragma("busy_timeout", { simple: true })).toBe(1000)
    }).pipe(Effect.scoped)
  )

  it.live("creates the database file and its -wal and -shm as 0600, and leaves an existing file's mode", () =>
    Effect.gen(function* () {
      const filename = tempFile()
      const db = yield* open({ filename, busyTimeoutMs: 1000 })
      // A write while the connection is open: its -wal and -shm files exist now.
      db.prepare("CREATE TABLE probe (x)").run()
      const mode = (path: string) => statSync(path).mode & 0o777
      expect([mode(filename), mode(`${filename}-wal`), mode(`${filename}-shm`)]).toEqual([
        0o600, 0o600, 0o600
      ])
      const shared = tempFile()
      writeFileSync(shared, "")
      chmodSync(shared, 0o640)
      yield* open({ filename: shared, busyTimeoutMs: 1000 })
      expect(mode(shared)).toBe(0o640)
    }).pipe(Effect.scoped)
  )

  it.live("reports a file that is not a database as Corrupt, and a missing directory as Unavailable", () =>
    Effect.gen(function* () {
      const garbage = tempFile()
      writeFileSync(
        garbage,
        "this is not a SQLite database, it is just long enough to have a header".repeat(20)
      )
      const corrupt = yield* Effect.flip(
        Effect.provide(createWorkspace, SqliteStorage.layer({ filename: garbage }))
      )
      expect(corrupt).toMatchObject({ _tag: "StorageError", reason: "Corrupt" })
      const missing = yield* Effect.flip(
        Effect.provide(createWorkspace, SqliteStorage.layer({ filename: join(dir, "no", "such", "dir.db") }))
      )
      expect(missing).toMatchObject({ _tag: "StorageError", reason: "Unavailable" })
    })
  )

  it.live(
    "retries a write while another connection holds the lock, and fails as Busy if it never lets go",
    () => {
      const filename = tempFile()
      return Effect.gen(function* () {
        const storage = yield* Storage.Storage
        const other = yield* Effect.acquireRelease(
          Effect.sync(() => new Database(filename)),
          (db) => Effect.sync(() => db.close())
        )
        other.exec("BEGIN IMMEDIATE")
        const blocked = yield* Effect.flip(storage.createWorkspace({ name: "blocked" }))
        expect(blocked).toMatchObject({ _tag: "StorageError", reason: "Busy" })
        expect(blocked.message).not.toMatch(/INSERT|workspaces|blocked/)

        // The other connection lets go while the storage waits between retries: the write goes through.
        setTimeout(() => other.exec("COMMIT"), 60)
        expect((yield* storage.createWorkspace({ name: "patient" })).name).toBe("patient")
      }).pipe(Effect.provide(SqliteStorage.layer({ filename, busyTimeoutMs: 50 })), Effect.scoped)
    }
  )

  it.live(
    "stores a build's lines and state changes in one transaction: one that fails stores none of it",
    () =>
      Effect.gen(function* () {
        const { storage, version } = yield* StorageConformance.seed()
        yield* StorageConformance.queue(version)
        const { build, fence } = yield* StorageConformance.claimOne("engine")
        const at = DateTime.makeUnsafe(yield* Clock.currentTimeMillis)
        const line = { seq: 1, ts: at, stream: "stdout", step: null, text: "hello" } as const
        // Started applies, then a cancelled stop without a cancel request does not: nothing is kept.
        const refused = yield* Effect.flip(
          storage.appendAndTransition(
            build.id,
            fence,
            [line],
            [
              { _tag: "Started", at, ...fence },
              { _tag: "Stopped", at, ...fence }
            ]
          )
        )
        expect(refused._tag).toBe("InvalidTransition")
        expect((yield* storage.getBuild(Access.all, build.id)).phase).toBe("initializing")
        expect((yield* storage.readLogs(Access.all, build.id, 0, 10)).lastSeq).toBe(0)
        const done = yield* storage.appendAndTransition(
          build.id,
          fence,
          [line],
          [
            { _tag: "Started", at, ...fence },
            { _tag: "Succeeded", at, ...fence, imageTag: null, imageDigest: null }
          ]
        )
        expect(done.outcome).toBe("success")
        expect((yield* storage.readLogs(Access.all, build.id, 0, 10)).lastSeq).toBe(1)
      }).pipe(Effect.provide(SqliteStorage.layer({ filename: tempFile() })))
  )
})
