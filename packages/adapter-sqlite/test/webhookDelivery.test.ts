import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { WebhookConformance } from "@kiln/core/testing"
import { afterAll } from "vitest"
import { SqliteStorage } from "../src/index.ts"

const dir = mkdtempSync(join(tmpdir(), "kiln-sqlite-webhooks-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let files = 0
WebhookConformance.delivery("sqlite (file)", (options) =>
  SqliteStorage.layer({ filename: join(dir, `storage-${++files}.db`), ...options })
)
