/**
 * `npm run bench -- deployments`: `GET /api/v1/deployments/{id}/builds` answers every build, newest first,
 * streamed from storage a page at a time, so the server's memory does not grow with the list.
 *
 * Kiln's server runs in a child process (`server-process.ts`) on a SQLite file holding two deployments, of
 * 10,000 and `KILN_BENCH_BUILDS` (default 100,000) builds. Each list is fetched whole, `rounds` times,
 * checked (every build exactly once, newest first) and timed; before each fetch the server's resident-set
 * high-water mark is reset (`/proc/<pid>/clear_refs`), and after it read (`VmHWM`), so the peak is the
 * server's own while it answered; the resident set is also sampled as the body arrives. Flat memory: the
 * server answers at all under its heap cap (below), the resident set stops growing early in the body, and
 * the growth does not follow the list's length. The last line is
 * `deployments: builds=<n> seconds=<median> body_mb=<n> peak_rss_mb=<max> growth_mb=<max> growth_small_mb=<max>`.
 *
 * The database lives in a temporary directory, removed at the end. Linux only (it reads `/proc`).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { NodeRuntime } from "@effect/platform-node"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, App, type AppVersion, Authenticator, Build, Id, Storage } from "@kiln/core"
import Database from "better-sqlite3"
import { DateTime, Effect } from "effect"
import { insertBuilds } from "./build-rows.ts"
import { residentKib, serverProcess } from "./server-process.ts"

const large = Number(process.env.KILN_BENCH_BUILDS ?? 100_000)
const small = 10_000
const rounds = 3
/**
 * The server's V8 heap is capped (old space `KILN_BENCH_HEAP_MB`, default 64; semi-spaces 4 MB): V8
 * otherwise lets garbage pile up before collecting, and the resident set then shows how lazy the collector
 * was (up to ~65 MB more in one round, none in the next) rather than what the list holds. A server that held
 * the whole list could not answer under the cap: the 100,000 builds alone take ~90 MB of heap (measured
 * with `--expose-gc`); with 40 MB of old space the server does not even start.
 */
const heapCapMb = Number(process.env.KILN_BENCH_HEAP_MB ?? 64)
const epoch = 1_735_689_600_000

/** Two deployments with a ready version each, and an admin token. */
const seed = (file: string) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const workspace = yield* storage.createWorkspace({ name: "bench" })
    const deployment = (handle: string) =>
      Effect.gen(function* () {
        const app = yield* storage.createApp(Access.all, {
          workspaceId: workspace.id,
          handle,
          name: handle,
          kind: "deployment",
          build: App.defaultBuildSettings
        })
        return yield* storage.createAppVersion(Access.all, {
          appId: app.id,
          source: { type: "git", url: `https://git.example.com/${handle}.git`, commitSha: "c".repeat(40) }
        })
      })
    const versions = { small: yield* deployment("small"), large: yield* deployment("large") }
    const { secret } = yield* Authenticator.issueToken({
      name: "bench",
      role: "admin",
      workspaceIds: "*",
      expiresAt: null
    })
    return { versions, token: secret }
  }).pipe(Effect.provide(SqliteStorage.layer({ filename: file })))

/** `count` queued builds of the version, a millisecond apart; their ids newest first. */
const fill = (db: Database.Database, version: AppVersion.AppVersion, count: number) => {
  const ids: Array<string> = []
  insertBuilds(
    db,
    (function* () {
      for (let i = 0; i < count; i++) {
        const id = Effect.runSync(Id.generate("bld"))
        ids.push(Id.toUuid(id))
        yield Build.make(
          id,
          version,
          i + 1,
          { appVersionId: version.id, trigger: "manual", createdBy: "bench" },
          DateTime.makeUnsafe(epoch + i)
        )
      }
    })()
  )
  return ids.reverse()
}

const mb = (kib: number) => (kib / 1024).toFixed(1)

const median = (values: ReadonlyArray<number>) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

interface Round {
  readonly seconds: number
  readonly bodyKib: number
  readonly beforeKib: number
  readonly peakKib: number
  /** The server's resident set when a quarter, half, three quarters and all of the body had arrived. */
  readonly quartersKib: ReadonlyArray<number>
}

/** One fetch of the whole list, checked, with the server's resident set while it answered. */
const fetchList = (url: string, token: string, pid: number, expected: ReadonlyArray<string>) =>
  Effect.promise(async (): Promise<Round> => {
    // Clears the high-water mark to the current resident set (Linux ≥ 4.0).
    writeFileSync(`/proc/${pid}/clear_refs`, "5")
    const beforeKib = residentKib(pid).now
    const samples: Array<{ readonly bytes: number; readonly rssKib: number }> = []
    let bytes = 0
    const sampler = setInterval(() => samples.push({ bytes, rssKib: residentKib(pid).now }), 20)
    const started = performance.now()
    const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
    const chunks: Array<Uint8Array> = []
    for await (const chunk of response.body!) {
      chunks.push(chunk)
      bytes += chunk.length
    }
    const seconds = (performance.now() - started) / 1000
    clearInterval(sampler)
    const peakKib = residentKib(pid).peak
    samples.push({ bytes, rssKib: residentKib(pid).now })
    const text = Buffer.concat(chunks).toString("utf8")
    const ids = (JSON.parse(text) as Array<{ id: string }>).map((build) => build.id)
    if (
      response.status !== 200 ||
      ids.length !== expected.length ||
      ids.some((id, i) => id !== expected[i])
    ) {
      throw new Error(
        `${url}: ${response.status}, ${ids.length} builds, not the ${expected.length} expected newest first`
      )
    }
    const quartersKib = [0.25, 0.5, 0.75, 1].map((q) => samples.find((s) => s.bytes >= q * bytes)!.rssKib)
    return { seconds, bodyKib: bytes / 1024, beforeKib, peakKib, quartersKib }
  })

const bench = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "kiln-bench-deployments-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  const file = join(dir, "kiln.db")
  const { versions, token } = yield* seed(file)
  const started = performance.now()
  const db = new Database(file)
  const expected = { small: fill(db, versions.small, small), large: fill(db, versions.large, large) }
  db.close()
  console.log(
    `seeded ${small.toLocaleString()} + ${large.toLocaleString()} builds in ${((performance.now() - started) / 1000).toFixed(1)} s`
  )
  const server = yield* serverProcess(
    "kiln",
    [file, join(dir, "sources")],
    [`--max-old-space-size=${heapCapMb}`, "--max-semi-space-size=4"]
  )
  const urlOf = (version: AppVersion.AppVersion) =>
    `${server.url}/api/v1/deployments/${Id.toUuid(version.appId)}/builds`
  // A warm-up, so that the first measured round does not pay for compiling the code it runs.
  yield* fetchList(urlOf(versions.small), token, server.pid, expected.small)

  const results = { small: [] as Array<Round>, large: [] as Array<Round> }
  for (let round = 1; round <= rounds; round++) {
    for (const size of ["small", "large"] as const) {
      const result = yield* fetchList(urlOf(versions[size]), token, server.pid, expected[size])
      results[size].push(result)
      console.log(
        `deployments round ${round} ${expected[size].length.toLocaleString()} builds: seconds=${result.seconds.toFixed(2)} ` +
          `body_mb=${mb(result.bodyKib)} rss_before_mb=${mb(result.beforeKib)} peak_rss_mb=${mb(result.peakKib)} ` +
          `growth_mb=${mb(result.peakKib - result.beforeKib)} rss_at_quarters_mb=${result.quartersKib.map(mb).join("/")}`
      )
    }
  }
  const growth = (size: "small" | "large") => Math.max(...results[size].map((r) => r.peakKib - r.beforeKib))
  console.log(
    `deployments: builds=${large} seconds=${median(results.large.map((r) => r.seconds)).toFixed(2)} ` +
      `body_mb=${mb(results.large[0]!.bodyKib)} peak_rss_mb=${mb(Math.max(...results.large.map((r) => r.peakKib)))} ` +
      `growth_mb=${mb(growth("large"))} growth_small_mb=${mb(growth("small"))}`
  )
})

// runMain: on Ctrl-C too, the scope closes, which stops the server and removes the directory.
NodeRuntime.runMain(Effect.scoped(bench))
