import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeRuntime } from "@effect/platform-node"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, Storage } from "@kiln/core"
import { Effect } from "effect"
import { readyVersion } from "./seed.ts"
import { serverProcess } from "./server-process.ts"

const opts = process.env.ZZ_OPTS ? process.env.ZZ_OPTS.split(" ") : []
const bench = Effect.gen(function* () {
  const dir = mkdtempSync(join(tmpdir(), "kiln-zz-"))
  const file = join(dir, "kiln.db")
  const { buildId, token } = yield* Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const { version, token } = yield* readyVersion
    const created = yield* Effect.forEach(Array.from({ length: 5000 }), () =>
      storage.createBuild(Access.all, { appVersionId: version.id, trigger: "manual", createdBy: "bench" })
    )
    return { buildId: created[2500]!.id, token }
  }).pipe(Effect.provide(SqliteStorage.layer({ filename: file })))
  const k = yield* serverProcess("kiln", [file, join(dir, "sources")], opts)
  const r = yield* serverProcess("raw", [file, token])
  console.log(
    JSON.stringify({
      kiln: `${k.url}/api/builds/${buildId}`,
      kilnPid: k.pid,
      raw: `${r.url}/api/builds/${buildId}`,
      rawPid: r.pid,
      token
    })
  )
  yield* Effect.never
})
NodeRuntime.runMain(Effect.scoped(bench))
