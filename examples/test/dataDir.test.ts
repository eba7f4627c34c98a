/**
 * The examples' data directory on disk: created for its user only (0700), with the SQLite database, its
 * -wal and -shm 0600, so that other local users cannot read the logs; a directory that exists keeps its mode.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Storage } from "@kiln/core"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import * as DataDir from "../shared/DataDir.ts"

const scratch = mkdtempSync(join(tmpdir(), "kiln-datadir-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

const mode = (path: string) => statSync(path).mode & 0o777

describe("examples › data directory", () => {
  it("is created 0700, and the database in it 0600 with its -wal and -shm", async () => {
    const dataDir = DataDir.at(join(scratch, "nested", "kiln"), join(scratch, "elsewhere", "kiln.db"))
    DataDir.create(dataDir)
    expect([mode(dataDir.dir), mode(join(scratch, "nested")), mode(join(scratch, "elsewhere"))]).toEqual([
      0o700, 0o700, 0o700
    ])
    await Effect.runPromise(
      Effect.gen(function* () {
        const storage = yield* Storage.Storage
        yield* storage.createWorkspace({ name: "private" })
        // Checked while the connection is open, when the -wal and -shm files exist.
        expect([
          mode(dataDir.database),
          mode(`${dataDir.database}-wal`),
          mode(`${dataDir.database}-shm`)
        ]).toEqual([0o600, 0o600, 0o600])
      }).pipe(Effect.provide(SqliteStorage.layer({ filename: dataDir.database })))
    )
  })

  it("names a database other users can read, and the command that makes it private", () => {
    const dataDir = DataDir.at(join(scratch, "exposed"))
    DataDir.create(dataDir)
    writeFileSync(dataDir.database, "", { mode: 0o600 })
    expect(DataDir.exposure(dataDir)).toBeUndefined()
    chmodSync(dataDir.database, 0o644)
    expect(DataDir.exposure(dataDir)).toBe(
      `${DataDir.forDisplay(dataDir.database)} 644: other local users can read the builds and their logs. ` +
        `Run: chmod 600 ${DataDir.forDisplay(dataDir.database)}`
    )
  })

  it("leaves the mode of a directory that exists", () => {
    const shared = join(scratch, "shared")
    mkdirSync(shared)
    chmodSync(shared, 0o750)
    DataDir.create(DataDir.at(shared))
    expect(mode(shared)).toBe(0o750)
  })
})
