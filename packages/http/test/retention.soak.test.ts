/**
 * Retention under load, on the real server (SQLite, the scripted runner): 20,000 builds
 * (`KILN_SOAK_BUILDS`) of 4 apps, each app uploading a new archive every 250 builds, under a policy that
 * keeps the newest 100 builds of each app and 5 s of events, while readers page through the build list
 * and read logs as the builds run. The database and the source store stay
 * bounded (the figures are printed), no reader ever gets a 5xx, and exactly the builds outside the policy
 * are gone.
 */
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { Runner } from "@kiln/core"
import Database from "better-sqlite3"
import { Effect, Exit, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startServer, type TestServer, workspaceWithApp } from "./fixtures/server.ts"

const total = Number(process.env.KILN_SOAK_BUILDS ?? 20_000)
const apps = 4
const keep = 100
const buildsPerArchive = 250

let server: TestServer
beforeAll(async () => {
  server = await startServer({
    engine: {
      runner: Runner.layerTest,
      options: {
        concurrency: 16,
        pollIntervalMs: 20,
        archiveSweepIntervalMs: 1000,
        retention: { keepBuilds: keep, events: "5 seconds", every: "500 millis", batchSize: 200 }
      }
    },
    sources: { archiveGracePeriod: "1 second" },
    // The soak sends thousands of requests a second from one token.
    rateLimit: false,
    quiet: true
  })
})
afterAll(() => server?.close())

const bytesOf = (path: string) => (existsSync(path) ? statSync(path).size : 0)
/** The database's files, and the part of them rows use (the rest is free pages SQLite reuses). */
const database = () => {
  const db = new Database(join(server.dir, "kiln.db"), { readonly: true })
  const pages = (pragma: string) => db.pragma(pragma, { simple: true }) as number
  const live = (pages("page_count") - pages("freelist_count")) * pages("page_size")
  db.close()
  const files = ["kiln.db", "kiln.db-wal", "kiln.db-shm"].reduce(
    (sum, file) => sum + bytesOf(join(server.dir, file)),
    0
  )
  return { files, live }
}
const archives = () => {
  const dir = join(server.dir, "sources", "archives")
  const files = existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith(".tar.gz")) : []
  return { count: files.length, bytes: files.reduce((sum, name) => sum + bytesOf(join(dir, name)), 0) }
}
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1)
const kib = (bytes: number) => (bytes / 1024).toFixed(1)

/** A new archive version of the app: a README that differs each time, so each is a new archive. */
const upload = async (appId: string, n: number) => {
  const dir = join(server.dir, "tree", `${appId}-${n}`)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, "README"), `version ${n} of ${appId}\n${"x".repeat(4096)}\n`)
  const made = await call(server, "POST", "/api/app-versions", {
    body: { appId, source: { type: "archive" } }
  })
  const stored = await call(server, "POST", `/api/app-versions/${made.body.id}/archive`, {
    body: new Uint8Array(gzipSync(execFileSync("tar", ["-c", "-C", dir, "."]))),
    headers: { "content-type": "application/gzip" }
  })
  if (stored.status >= 300) throw new Error(`upload failed: ${stored.text}`)
  return made.body.id as string
}

/** Every status a reader saw, by kind of read. */
const seen = new Map<string, Map<number, number>>()
const record = (kind: string, status: number) => {
  const counts = seen.get(kind) ?? new Map<number, number>()
  counts.set(status, (counts.get(status) ?? 0) + 1)
  seen.set(kind, counts)
}

/** Pages through the whole build list, newest first, over and over until `done`. */
const pager = async (done: () => boolean) => {
  while (!done()) {
    let after: string | undefined
    do {
      const page = await call(server, "GET", `/api/builds?limit=100${after ? `&after=${after}` : ""}`)
      record("list", page.status)
      after = page.status === 200 && page.body.pageInfo.hasNextPage ? page.body.pageInfo.endCursor : undefined
    } while (after !== undefined && !done())
  }
}

/** Reads the newest builds' logs to their end, as a follower would, over and over until `done`. */
const follower = async (done: () => boolean) => {
  while (!done()) {
    const newest = await call(server, "GET", "/api/builds?limit=5")
    record("list", newest.status)
    for (const build of newest.status === 200 ? (newest.body.data as Array<{ id: string }>) : []) {
      let cursor = ""
      for (let page = 0; page < 20; page++) {
        const read = await call(server, "GET", `/api/builds/${build.id}/logs?limit=100${cursor}`)
        record("logs", read.status)
        if (read.status !== 200 || read.body.complete) break
        cursor = `&cursor=${read.body.cursor}`
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      const text = await call(server, "GET", `/api/builds/${build.id}/logs?format=text`)
      record("logs", text.status)
      // And over the WebSocket, as the typed client follows a log: to its end.
      const followed = await Effect.runPromise(
        Effect.exit(Stream.runDrain((await server.client(server.admin)).followLogs(build.id)))
      )
      // Counted as statuses: 101 followed to its end, 404 deleted meanwhile (a hundred newer builds of its app
      // came while this reader was slow), 599 failed otherwise (which the 5xx check below catches).
      record("stream", Exit.isSuccess(followed) ? 101 : /not found/.test(String(followed.cause)) ? 404 : 599)
    }
  }
}

describe("retention soak", () => {
  it(`keeps ${keep} builds of each app through ${total} builds, with readers paging and following logs`, async () => {
    const made = await Promise.all(
      Array.from({ length: apps }, () =>
        workspaceWithApp(server, { strategy: "commands", buildCommand: "echo built" })
      )
    )
    const appIds = made.map(({ app }) => app.id)
    const versions = new Map<string, string>()
    let created = 0
    let finished = false
    const samples: Array<{
      builds: number
      files: number
      live: number
      archives: number
      archiveBytes: number
    }> = []
    const sample = () => {
      const { count, bytes } = archives()
      samples.push({ builds: created, ...database(), archives: count, archiveBytes: bytes })
    }
    const readers = [pager(() => finished), pager(() => finished), follower(() => finished)]
    const started = Date.now()
    // Creations sixteen at a time, four per app; each app uploads its next archive every 250 builds.
    const perApp = Math.ceil(total / apps)
    const lanes = 4
    // The queue is held under 200 builds an app, as the engine keeps up with it: what stays is then what
    // retention keeps, not a backlog.
    const backlog = async (appId: string) => {
      const pending = await call(server, "GET", `/api/builds?app_id=${appId}&status=pending&limit=1`)
      record("list", pending.status)
      return pending.body.pageInfo.total as number
    }
    const createAll = async (appId: string) => {
      for (let n = 0; n < perApp; n += lanes) {
        if (n % 100 === 0) while ((await backlog(appId)) > 200) await new Promise((r) => setTimeout(r, 50))
        if (n % buildsPerArchive === 0) versions.set(appId, await upload(appId, n / buildsPerArchive))
        await Promise.all(
          Array.from({ length: Math.min(lanes, perApp - n) }, async () => {
            const build = await call(server, "POST", "/api/builds", {
              body: { appVersionId: versions.get(appId) }
            })
            record("create", build.status)
            created++
            if (created % (total / 4) === 0) sample()
          })
        )
      }
    }
    await Promise.all(appIds.map(createAll))
    // Every build runs, then retention and the archive sweep catch up.
    const settled = async () => {
      const counts = await Promise.all(
        appIds.map(async (appId) => {
          const page = await call(server, "GET", `/api/builds?app_id=${appId}&limit=1`)
          const pending = await call(server, "GET", `/api/builds?app_id=${appId}&status=pending&limit=1`)
          const running = await call(server, "GET", `/api/builds?app_id=${appId}&status=running&limit=1`)
          return (
            page.body.pageInfo.total === keep &&
            pending.body.pageInfo.total === 0 &&
            running.body.pageInfo.total === 0
          )
        })
      )
      return counts.every(Boolean)
    }
    while (!(await settled())) await new Promise((resolve) => setTimeout(resolve, 250))
    await new Promise((resolve) => setTimeout(resolve, 3000))
    finished = true
    await Promise.all(readers)
    sample()
    const elapsed = (Date.now() - started) / 1000

    // Exactly the newest `keep` of each app are left, and each app's newest version.
    for (const appId of appIds) {
      const newest = encodeURIComponent(JSON.stringify([{ sequenceNumber: "desc" }]))
      const left = await call(server, "GET", `/api/builds?app_id=${appId}&limit=100&orderBy=${newest}`)
      expect(left.status).toBe(200)
      const sequences = (left.body.data as Array<{ sequenceNumber: number }>).map((b) => b.sequenceNumber)
      expect(sequences).toEqual(Array.from({ length: keep }, (_, i) => perApp - i))
    }
    const fiveXX = [...seen.values()].flatMap((counts) => [...counts].filter(([status]) => status >= 500))
    const figures = {
      builds: created,
      seconds: elapsed,
      per_s: Math.round(created / elapsed),
      reads: Object.fromEntries([...seen].map(([kind, counts]) => [kind, Object.fromEntries(counts)])),
      samples: samples.map(
        (s) =>
          `${s.builds} builds: database files ${mib(s.files)} MiB (rows ${mib(s.live)} MiB), ` +
          `${s.archives} archives ${kib(s.archiveBytes)} KiB`
      )
    }
    console.log(`retention soak: ${JSON.stringify(figures, null, 1)}`)

    expect(fiveXX).toEqual([])
    expect([...(seen.get("create") ?? new Map()).keys()]).toEqual([201])
    // Bounded: what rows take stays about where it was halfway, the files (which keep their high-water
    // mark, SQLite reusing the free pages) grow by less than half, and the source store holds only the
    // archives of kept builds' versions and each app's newest.
    const half = samples.find((s) => s.builds >= total / 2)!
    const last = samples.at(-1)!
    expect(last.live).toBeLessThan(half.live * 1.25)
    expect(last.files).toBeLessThan(half.files * 1.5)
    expect(last.archives).toBeLessThanOrEqual(apps * (Math.ceil(keep / buildsPerArchive) + 1))
  }, 900_000)
})
