/**
 * `npm run bench -- sources`: an uploaded archive's way from the client to a build, on each storage. A
 * `KILN_BENCH_ARCHIVE_MB` (default 50) `.tar.gz` of random bytes, which gzip cannot shrink, is uploaded
 * with an HTTP POST to Kiln's server (which receives, hashes and checks it, then stores it: in a directory
 * beside SQLite, in the database on PostgreSQL), and then the server reads the version's whole build
 * context, as a build would. The server runs in a child process (`server-process.ts`); before each leg its
 * resident-set high-water mark is reset (`/proc/<pid>/clear_refs`), and after it read, so the peak is the
 * server's own above what it held idle. Each round uploads a different archive, so nothing is deduplicated.
 * The store leg alone is measured too, in this process: the same archives put into a fresh archive store
 * (`ArchiveStore.put`, in 64 KiB pieces as the server receives them), without HTTP or the archive's check.
 *
 * Lines per round, a line per storage with the medians of each leg, then `sources: sqlite_mb_s=<n>
 * postgres_mb_s=<n> peak_mb=<n>`: the median upload rate (HTTP, check and store) on each storage and the
 * highest peak above idle of any leg. Linux only (it reads `/proc`).
 */
import { execFileSync } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { NodeRuntime } from "@effect/platform-node"
import { PgArchiveStore, PgStorage } from "@kiln/adapter-postgres"
import * as PgTesting from "@kiln/adapter-postgres/testing"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, App, ArchiveStore, Authenticator, Storage } from "@kiln/core"
import { Effect, type Layer, Stream } from "effect"
import { postgres } from "./pipeline.ts"
import { residentKib, serverProcess } from "./server-process.ts"

const archiveMb = Number(process.env.KILN_BENCH_ARCHIVE_MB ?? 50)
const rounds = 3
const MB = 1024 * 1024

/** A `.tar.gz` of one file of random bytes, `archiveMb` long in all. */
const archiveOf = (dir: string) => {
  writeFileSync(join(dir, "random.bin"), randomBytes(archiveMb * MB - 64 * 1024))
  const tar = execFileSync("tar", ["-cf", "-", "-C", dir, "random.bin"], { maxBuffer: 2 * archiveMb * MB })
  rmSync(join(dir, "random.bin"))
  return gzipSync(tar, { level: 1 })
}

/** A workspace, an app, an archive version per round, and an admin token. */
const seed = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  const workspace = yield* storage.createWorkspace({ name: "bench" })
  const app = yield* storage.createApp(Access.all, {
    workspaceId: workspace.id,
    handle: "archives",
    name: "Archives",
    kind: "app",
    build: App.defaultBuildSettings
  })
  const versions = yield* Effect.forEach(Array.from({ length: rounds }), () =>
    storage.createAppVersion(Access.all, { appId: app.id, source: { type: "archive" } })
  )
  const { secret } = yield* Authenticator.issueToken({
    name: "bench",
    role: "admin",
    workspaceIds: "*",
    expiresAt: null
  })
  return { versions: versions.map((version) => version.id), token: secret }
})

const mb = (kib: number) => kib / 1024

interface Round {
  readonly uploadMbS: number
  readonly contextMbS: number
  /** The server's resident-set peak above idle while it took the upload, and while it read the context. */
  readonly uploadPeakKib: number
  readonly contextPeakKib: number
}

const resetPeak = (pid: number) => writeFileSync(`/proc/${pid}/clear_refs`, "5")

/** One round: the upload, then the build context, each with the server's peak above idle. */
const round = (
  server: { readonly url: string; readonly control: string; readonly pid: number },
  token: string,
  version: string,
  archive: Buffer,
  idleKib: number
) =>
  Effect.promise(async (): Promise<Round> => {
    resetPeak(server.pid)
    let started = performance.now()
    const response = await fetch(`${server.url}/api/app-versions/${version}/archive`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/gzip" },
      body: archive
    })
    const stored = (await response.json()) as { readonly commitSha?: string }
    const uploadS = (performance.now() - started) / 1000
    const uploadPeak = residentKib(server.pid).peak
    if (stored.commitSha !== createHash("sha256").update(archive).digest("hex"))
      throw new Error(`upload answered ${response.status} ${JSON.stringify(stored).slice(0, 300)}`)
    resetPeak(server.pid)
    started = performance.now()
    const context = await fetch(`${server.control}/context/${version}`)
    if (context.status !== 200) throw new Error(`context: ${context.status} ${await context.text()}`)
    const { bytes, ms } = (await context.json()) as { readonly bytes: number; readonly ms: number }
    const contextPeak = residentKib(server.pid).peak
    return {
      uploadMbS: archive.length / MB / uploadS,
      contextMbS: bytes / MB / (ms / 1000),
      uploadPeakKib: uploadPeak - idleKib,
      contextPeakKib: contextPeak - idleKib
    }
  })

const median = (values: ReadonlyArray<number>) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

/** Every round on one storage, through a server started on it. */
const storage = (
  name: string,
  layer: Layer.Layer<Storage.Storage, unknown>,
  args: ReadonlyArray<string>,
  archives: ReadonlyArray<Buffer>
) =>
  Effect.gen(function* () {
    const { versions, token } = yield* Effect.provide(seed, layer)
    const server = yield* serverProcess("sources", args)
    // Settled: what the server holds once it listens and its pools are open.
    yield* Effect.sleep("1 second")
    const idleKib = residentKib(server.pid).now
    const results: Array<Round> = []
    for (let i = 0; i < rounds; i++) {
      const result = yield* round(server, token, versions[i]!, archives[i]!, idleKib)
      results.push(result)
      console.log(
        `${name} round ${i + 1}: archive_mb=${mb(archives[i]!.length / 1024).toFixed(1)} ` +
          `upload_mb_s=${result.uploadMbS.toFixed(0)} context_mb_s=${result.contextMbS.toFixed(0)} ` +
          `idle_rss_mb=${mb(idleKib).toFixed(1)} upload_peak_mb=${mb(result.uploadPeakKib).toFixed(1)} ` +
          `context_peak_mb=${mb(result.contextPeakKib).toFixed(1)}`
      )
    }
    return {
      uploadMbS: median(results.map((r) => r.uploadMbS)),
      contextMbS: median(results.map((r) => r.contextMbS)),
      peakKib: Math.max(...results.map((r) => Math.max(r.uploadPeakKib, r.contextPeakKib)))
    }
  })

/** The median rate of putting each archive into a fresh store, in the pieces a server receives. */
const storeLeg = (layer: Layer.Layer<ArchiveStore.ArchiveStore, unknown>, archives: ReadonlyArray<Buffer>) =>
  Effect.gen(function* () {
    const store = yield* ArchiveStore.ArchiveStore
    const rates: Array<number> = []
    for (const archive of archives) {
      const pieces = Array.from({ length: Math.ceil(archive.length / 65536) }, (_, i) =>
        archive.subarray(i * 65536, (i + 1) * 65536)
      )
      const started = performance.now()
      yield* store.put({ body: Stream.fromIterable(pieces) })
      rates.push(archive.length / MB / ((performance.now() - started) / 1000))
    }
    return median(rates)
  }).pipe(Effect.provide(layer))

const bench = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "kiln-bench-sources-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  const archives = Array.from({ length: rounds }, () => archiveOf(dir))
  const file = join(dir, "kiln.db")
  const sqlite = yield* storage(
    "sqlite",
    SqliteStorage.layer({ filename: file }),
    [file, join(dir, "sqlite-sources")],
    archives
  )
  const url = yield* postgres
  const schema = PgTesting.uniqueSchema("kiln_bench")
  const pg = yield* storage(
    "postgres",
    PgStorage.layer({ connectionString: url, schema }),
    [url, join(dir, "postgres-sources"), schema],
    archives
  )
  const sqliteStore = yield* storeLeg(ArchiveStore.layer({ directory: join(dir, "store") }), archives)
  const pgStore = yield* storeLeg(
    PgArchiveStore.layer({ connectionString: url, schema: PgTesting.uniqueSchema("kiln_bench") }),
    archives
  )
  for (const [name, legs, store] of [
    ["sqlite", sqlite, sqliteStore],
    ["postgres", pg, pgStore]
  ] as const) {
    console.log(
      `${name}: upload_mb_s=${legs.uploadMbS.toFixed(0)} store_mb_s=${store.toFixed(0)} ` +
        `context_mb_s=${legs.contextMbS.toFixed(0)} peak_above_idle_mb=${mb(legs.peakKib).toFixed(1)}`
    )
  }
  console.log(
    `sources: sqlite_mb_s=${sqlite.uploadMbS.toFixed(0)} postgres_mb_s=${pg.uploadMbS.toFixed(0)} ` +
      `peak_mb=${mb(Math.max(sqlite.peakKib, pg.peakKib)).toFixed(1)}`
  )
})

// runMain: on Ctrl-C too, the scope closes, which stops the servers and removes the directory.
NodeRuntime.runMain(Effect.scoped(bench))
