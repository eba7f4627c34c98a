import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { StorageConformance } from "@kiln/core/testing"
import { afterAll } from "vitest"
import { SqliteStorage } from "../src/index.ts"

const dir = mkdtempSync(join(tmpdir(), "kiln-sqlite-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let files = 0
const tempFile = () => join(dir, `storage-${++files}.db`)

StorageConformance.all("sqlite (file)", (options) =>
  SqliteStorage.layer({ filename: tempFile(), ...options })
)
StorageConformance.all("sqlite (:memory:)", (options) =>
  SqliteStorage.layer({ filename: ":memory:", ...options })
)
