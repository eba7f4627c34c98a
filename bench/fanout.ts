/**
 * `npm run bench -- fanout`: one build's log to many followers. `KILN_BENCH_FOLLOWERS` (default 100)
 * WebSocket clients follow a build on Kiln's server (SQLite, its own process) while the build writes
 * `KILN_BENCH_LINES` lines (default 200,000) through storage in batches of 500, as an engine would; then
 * the same clients follow a bare `ws` server (`http-server.ts fanout-raw`) sending the same frames, byte for
 * byte, in the same batches. The clock runs from the first write to the last line reaching the last client;
 * every client checks it got every line once, in order. Lines per second count lines delivered to all
 * followers. Last line: `fanout: kiln_lines_per_s=<n> raw_lines_per_s=<n> ratio=<kiln/raw>`.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { NodeRuntime } from "@effect/platform-node"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Effect } from "effect"
import WebSocket from "ws"
import { lineFrame } from "./fanout-log.ts"
import { startedBuild } from "./seed.ts"
import { type ServerProcess, serverProcess } from "./server-process.ts"

const lines = Number(process.env.KILN_BENCH_LINES ?? 200_000)
const followers = Number(process.env.KILN_BENCH_FOLLOWERS ?? 100)

/** A claimed, started build with no log yet, and a token that may follow it. */
const seed = (file: string) => startedBuild.pipe(Effect.provide(SqliteStorage.layer({ filename: file })))

interface Follower {
  /** The first line frame, to compare the two servers' bytes. */
  readonly first: Promise<string>
  /** Every line came, once and in order, and then a normal close. */
  readonly done: Promise<void>
}

/** A client that counts line frames, checking each one's seq without parsing the rest. */
const follow = (url: string, token: string, opened: () => void): Follower => {
  const socket = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } })
  const first = Promise.withResolvers<string>()
  const done = Promise.withResolvers<void>()
  let next = 1
  socket.on("message", (data: Buffer) => {
    const text = data.toString()
    if (!text.startsWith('{"type":"line"')) {
      if (text.startsWith('{"type":"status","status":"running"')) opened()
      return
    }
    if (next === 1) first.resolve(text)
    const seq = Number.parseInt(text.slice(text.indexOf('"seq":') + 6), 10)
    if (seq !== next) done.reject(new Error(`line ${seq} came where ${next} was due`))
    next++
  })
  socket.on("error", done.reject)
  socket.on("close", (code) =>
    code === 1000 && next === lines + 1
      ? done.resolve()
      : done.reject(new Error(`closed with ${code} after ${next - 1} of ${lines} lines`))
  )
  return { first: first.promise, done: done.promise }
}

/** Connects every follower, waits until each has its first message, then asks the server to write. */
const measure = (server: ServerProcess, path: string, token: string) =>
  Effect.promise(async () => {
    const url = `${server.url.replace("http", "ws")}${path}`
    let open = 0
    const allOpen = Promise.withResolvers<void>()
    const clients = Array.from({ length: followers }, () =>
      follow(url, token, () => {
        if (++open === followers) allOpen.resolve()
      })
    )
    await allOpen.promise
    const started = performance.now()
    const written = Effect.runPromise(server.ask({ write: lines }))
    await Promise.all(clients.map((client) => client.done))
    const seconds = (performance.now() - started) / 1000
    await written
    return { perSecond: lines / seconds, seconds, first: await clients[0]!.first }
  })

const bench = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "kiln-bench-fanout-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  const file = join(dir, "kiln.db")
  const { buildId, token } = yield* seed(file)
  console.log(
    `${followers} followers, ${lines.toLocaleString()} lines written in batches of 500, Kiln then raw ws`
  )

  const kilnServer = yield* serverProcess("fanout-kiln", [file, join(dir, "sources"), buildId])
  const kiln = yield* measure(kilnServer, `/api/builds/${buildId}/logs/stream`, token)
  console.log(`fanout kiln: ${kiln.seconds.toFixed(1)} s, lines_per_s=${Math.round(kiln.perSecond)}`)
  const rawServer = yield* serverProcess("fanout-raw", [String(lines)])
  const raw = yield* measure(rawServer, "/", token)
  console.log(`fanout raw: ${raw.seconds.toFixed(1)} s, lines_per_s=${Math.round(raw.perSecond)}`)
  // The same bytes, or the comparison would not be fair.
  if (kiln.first !== raw.first || raw.first !== lineFrame(1)) {
    return yield* Effect.die(`the servers sent different frames: ${kiln.first} / ${raw.first}`)
  }
  console.log(
    `fanout: kiln_lines_per_s=${Math.round(kiln.perSecond)} raw_lines_per_s=${Math.round(raw.perSecond)} ` +
      `ratio=${(kiln.perSecond / raw.perSecond).toFixed(2)}`
  )
})

NodeRuntime.runMain(Effect.scoped(bench))
