/**
 * `npm run bench -- followers`: what followers that never read cost Kiln's server. A build holds
 * `KILN_BENCH_LINES` log lines (default 2,000,000, written straight through storage); `KILN_BENCH_FOLLOWERS`
 * clients (default 5) upgrade to its log stream and never read a byte for 24 s, then go; then one client
 * follows the whole log and checks that every line comes, in order. The server runs in a child process of
 * its own (`http-server.ts`, with Kiln's defaults: 1 MiB per follower, closed after 30 s without progress);
 * its RSS and peak RSS are read from `/proc` (Linux). Last line:
 * `followers: peak_rss_growth_mb=<n> after_rss_growth_mb=<n> reader_lines_per_s=<n>`, the growth while the
 * followers were stuck and 5 s after they went.
 *
 * Measured on a loaded 2-core machine: before followers had backpressure, RSS went from 195 to 802 MiB in the
 * 24 s and stayed at 808 MiB after they went; with it, 195 to 301 MiB, the same with 100,000 lines as with
 * 2,000,000 (what grows is the garbage of filling the kernel's socket buffers, and the heap keeps it for the
 * next followers), and a reader got all 2,000,000 lines at about 16,000 a second.
 */
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { connect, type Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { NodeRuntime } from "@effect/platform-node"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Storage } from "@kiln/core"
import { DateTime, Duration, Effect } from "effect"
import { lineText } from "./fanout-log.ts"
import { startedBuild } from "./seed.ts"
import { residentKib, serverProcess } from "./server-process.ts"

const lines = Number(process.env.KILN_BENCH_LINES ?? 2_000_000)
const followers = Number(process.env.KILN_BENCH_FOLLOWERS ?? 5)
const stuckSeconds = 24
const batch = 10_000

/** A stopped build with `lines` lines of typical length. */
const seed = (file: string) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const { buildId, token, fence: owner, at } = yield* startedBuild
    for (let from = 1; from <= lines; from += batch) {
      yield* storage.appendLogs(
        buildId,
        owner,
        Array.from({ length: Math.min(batch, lines - from + 1) }, (_, i) => ({
          seq: from + i,
          ts: at,
          stream: "stdout" as const,
          step: null,
          text: lineText(from + i)
        }))
      )
    }
    yield* storage.transition(buildId, {
      _tag: "Succeeded",
      imageTag: null,
      imageDigest: null,
      at: yield* DateTime.now,
      ...owner
    })
    return { buildId, token }
  }).pipe(
    Effect.provide(
      SqliteStorage.layer({ filename: file, logBudget: { headBytes: 1024 ** 2, tailBytes: 1024 ** 3 } })
    )
  )

/** The process's resident memory now and at its peak, in MiB. */
const rss = (pid: number) => {
  const { now, peak } = residentKib(pid)
  return { now: now / 1024, peak: peak / 1024 }
}

/** A WebSocket upgrade done by hand, after which the client never reads again. */
const stuckFollower = (url: URL, path: string, token: string) =>
  Effect.callback<Socket>((resume) => {
    const socket = connect(Number(url.port), url.hostname)
    socket.once("error", (error) => resume(Effect.die(error)))
    socket.once("data", (chunk) => {
      socket.pause()
      resume(
        String(chunk).startsWith("HTTP/1.1 101")
          ? Effect.succeed(socket)
          : Effect.die(`no upgrade: ${String(chunk).split("\r\n")[0]}`)
      )
    })
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n` +
        `Authorization: Bearer ${token}\r\n\r\n`
    )
  })

/** Follows the whole log with Node's WebSocket; fails unless every line comes, in order, then a normal close. */
const reader = (url: string, token: string) =>
  Effect.callback<number>((resume) => {
    const socket = new WebSocket(url, ["kiln", `bearer.${token}`])
    let next = 1
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as { type: string; seq?: number }
      if (message.type !== "line") return
      if (message.seq !== next) resume(Effect.die(`line ${message.seq} came where ${next} was due`))
      next++
    }
    socket.onclose = (event) =>
      resume(
        event.code === 1000 && next === lines + 1
          ? Effect.succeed(next - 1)
          : Effect.die(`closed with ${event.code} after ${next - 1} of ${lines} lines`)
      )
  })

const bench = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "kiln-bench-followers-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  const file = join(dir, "kiln.db")
  const seeding = performance.now()
  const { buildId, token } = yield* seed(file)
  console.log(
    `${lines.toLocaleString()} lines stored in ${((performance.now() - seeding) / 1000).toFixed(0)} s`
  )
  const kiln = yield* serverProcess("kiln", [file, join(dir, "sources")])
  const url = new URL(kiln.url)
  const path = `/api/builds/${buildId}/logs/stream`
  yield* Effect.sleep("1 second")
  const mb = (n: number) => n.toFixed(0)

  const before = rss(kiln.pid)
  const stuck = yield* Effect.forEach(Array.from({ length: followers }), () =>
    stuckFollower(url, path, token)
  )
  yield* Effect.sleep(`${stuckSeconds} seconds`)
  const during = rss(kiln.pid)
  for (const socket of stuck) socket.destroy()
  yield* Effect.sleep("5 seconds")
  const after = rss(kiln.pid)
  console.log(
    `followers: ${followers} stuck for ${stuckSeconds} s; server RSS ${mb(before.now)} MiB before, ` +
      `${mb(during.peak)} MiB at the peak, ${mb(after.now)} MiB 5 s after they went`
  )

  // The peak again, for the reader alone.
  writeFileSync(`/proc/${kiln.pid}/clear_refs`, "5")
  const [elapsed, received] = yield* Effect.timed(reader(`ws://${url.host}${path}`, token))
  const seconds = Duration.toMillis(elapsed) / 1000
  const reading = rss(kiln.pid)
  console.log(
    `followers: a reader got all ${received.toLocaleString()} lines in order in ${seconds.toFixed(1)} s; ` +
      `server RSS ${mb(after.now)} MiB before, ${mb(reading.peak)} MiB at the peak`
  )
  console.log(
    `followers: peak_rss_growth_mb=${mb(during.peak - before.now)} after_rss_growth_mb=${mb(after.now - before.now)} ` +
      `reader_lines_per_s=${Math.round(received / seconds)}`
  )
})

NodeRuntime.runMain(Effect.scoped(bench))
