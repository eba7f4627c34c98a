/**
 * `npm run bench -- http`: `GET /api/builds/{id}` with a bearer token, Kiln's server against a bare
 * `node:http` server that answers the same build from the same SQLite file, and against the same answers
 * from Effect's own HTTP server and router, the floor of any server built on it (`http-server.ts`). Each
 * server runs in a child process of its own; autocannon loads them in turn from this one, with the same
 * settings, for `rounds` rounds each (a warm-up, then the measured run). Medians of the rounds; the last
 * line is `http: kiln/raw=<ratio> kiln_rps=<n> p99_ms=<n> effect/raw=<ratio>`, the p99 of Kiln's median
 * round.
 *
 * The database (`KILN_BENCH_BUILDS` builds, default 5,000) lives in a temporary directory, removed at the end.
 * With `KILN_BENCH_PROFILE_DIR` set, Kiln's server writes a V8 CPU profile of the whole run there.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeRuntime } from "@effect/platform-node"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, Storage } from "@kiln/core"
import autocannon from "autocannon"
import { Effect } from "effect"
import { readyVersion } from "./seed.ts"
import { serverProcess } from "./server-process.ts"

const builds = Number(process.env.KILN_BENCH_BUILDS ?? 5_000)
// Five short rounds rather than three long ones: a burst of other work on a small machine spoils a round,
// and the median leaves it out.
const rounds = 5
const load = { connections: 10, pipelining: 1 }
const warmupSeconds = 1
const seconds = 4

const kinds = ["kiln", "effect", "raw"] as const
const profileDir = process.env.KILN_BENCH_PROFILE_DIR
const profiling = profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]
type Kind = (typeof kinds)[number]

/** A ready version with `builds` builds; the one to fetch sits in the middle. */
const seed = (file: string) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const { version, token } = yield* readyVersion
    const created = yield* Effect.forEach(Array.from({ length: builds }), () =>
      storage.createBuild(Access.all, { appVersionId: version.id, trigger: "manual", createdBy: "bench" })
    )
    return { buildId: created[Math.floor(builds / 2)]!.id, token }
  }).pipe(Effect.provide(SqliteStorage.layer({ filename: file })))

/** Both servers must answer the same build, and refuse a caller without the token. */
const check = (kind: Kind, url: string, token: string) =>
  Effect.promise(async () => {
    const ok = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
    const body = (await ok.json()) as { id?: string }
    const refused = await fetch(url)
    await refused.body?.cancel()
    if (ok.status !== 200 || !url.endsWith(`/${body.id}`) || refused.status !== 401) {
      throw new Error(
        `${kind}: ${ok.status} for the build (id ${body.id}), ${refused.status} without a token`
      )
    }
  })

const cannon = (url: string, token: string, duration: number) =>
  Effect.promise(() =>
    autocannon({ url, ...load, duration, headers: { authorization: `Bearer ${token}` } })
  ).pipe(
    Effect.flatMap((result) =>
      result.non2xx === 0 && result.errors === 0
        ? Effect.succeed(result)
        : Effect.die(`${url}: ${result.non2xx} non-2xx responses, ${result.errors} errors`)
    )
  )

interface Round {
  readonly rps: number
  readonly p50: number
  readonly p99: number
}

const medianRound = (runs: ReadonlyArray<Round>) =>
  [...runs].sort((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)]!

const bench = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "kiln-bench-http-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  const file = join(dir, "kiln.db")
  const { buildId, token } = yield* seed(file)
  const urls = {
    kiln: (yield* serverProcess("kiln", [file, join(dir, "sources")], profiling)).url,
    effect: (yield* serverProcess("effect", [file, token])).url,
    raw: (yield* serverProcess("raw", [file, token])).url
  }
  const path = `/api/builds/${buildId}`
  for (const kind of kinds) yield* check(kind, `${urls[kind]}${path}`, token)
  console.log(
    `${builds.toLocaleString()} builds; ${load.connections} connections, pipelining ${load.pipelining}; ` +
      `${warmupSeconds} s warm-up + ${seconds} s per round, alternating`
  )

  const results: Record<Kind, Array<Round>> = { kiln: [], effect: [], raw: [] }
  for (let round = 1; round <= rounds; round++) {
    for (const kind of kinds) {
      const url = `${urls[kind]}${path}`
      yield* cannon(url, token, warmupSeconds)
      const { requests, latency } = yield* cannon(url, token, seconds)
      const result = { rps: requests.average, p50: latency.p50, p99: latency.p99 }
      results[kind].push(result)
      console.log(
        `http round ${round} ${kind}: rps=${Math.round(result.rps)} p50_ms=${result.p50} p99_ms=${result.p99}`
      )
    }
  }
  const [kiln, effect, raw] = kinds.map((kind) => medianRound(results[kind])) as [Round, Round, Round]
  console.log(
    `http: kiln/raw=${(kiln.rps / raw.rps).toFixed(2)} kiln_rps=${Math.round(kiln.rps)} p99_ms=${kiln.p99} ` +
      `effect/raw=${(effect.rps / raw.rps).toFixed(2)}`
  )
})

// runMain: on Ctrl-C too, the scope closes, which stops the servers and removes the directory.
NodeRuntime.runMain(Effect.scoped(bench))
