/**
 * Many Kiln processes on one PostgreSQL (DESIGN.md §8), as child processes with the scripted runner: each
 * build runs at most once, caps hold across processes, a paused process is fenced out and a killed one
 * reaped by its peers, and the log stream and cancel work across processes.
 */
import { Access, Authenticator, type Build, Storage } from "@kiln/core"
import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { openStream } from "../../packages/http/test/fixtures/websocket.ts"
import { type Cluster, cluster, type KilnProcess } from "./fixtures/cluster.ts"
import { sleep, until } from "./fixtures/polling.ts"

let current: Cluster | undefined
afterEach(async () => {
  await current?.close()
  current = undefined
})
const fresh = async () => {
  current = await cluster()
  return current
}

/** A small deterministic generator, so a seed reproduces a run's choices. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const queue = (kiln: Cluster, appVersionId: Build.Build["appVersionId"], count: number) =>
  kiln.run(
    Storage.Storage.use((storage) =>
      Effect.forEach(Array.from({ length: count }), () =>
        Effect.map(
          storage.createBuild(Access.all, { appVersionId, trigger: "manual", createdBy: "scale-out" }),
          (build) => build.id
        )
      )
    )
  )

const buildRow = async (kiln: Cluster, id: string) =>
  (await kiln.sql<Record<string, unknown>>("SELECT * FROM builds WHERE id = $1", [id]))[0]!

describe("scale-out › many processes on one PostgreSQL", () => {
  for (const seed of [1, 2, 3]) {
    it(`runs each of 4,000 builds exactly once across 4 processes × concurrency 4 (seed ${seed})`, async () => {
      const kiln = await fresh()
      const next = random(seed)
      // Twenty apps with scripts of different lengths, so the processes interleave unevenly.
      let queued = 0
      for (let a = 0; a < 20; a++) {
        const { version } = await kiln.app(
          next() < 0.5 ? "echo done" : `sleep 0.00${1 + Math.floor(next() * 8)}`
        )
        queued += (await queue(kiln, version.id, 200)).length
      }
      expect(queued).toBe(4000)
      const engine = { concurrency: 4, leaseMs: 15_000, reapIntervalMs: 1_000, pollIntervalMs: 200 }
      const started = Date.now()
      const processes = await Promise.all(
        [1, 2, 3, 4].map(async (n) => {
          await sleep(Math.floor(next() * 300))
          return kiln.start(`race-${seed}-${n}`, { engine })
        })
      )
      await until(
        "every build to stop",
        async () => {
          const [{ left }] = await kiln.sql<{ left: string }>(
            "SELECT count(*) AS left FROM builds WHERE phase <> 'stopped'"
          )
          return Number(left) === 0 ? true : undefined
        },
        180_000
      )
      const seconds = (Date.now() - started) / 1000
      const [totals] = await kiln.sql<{ runs: string; builds: string; unfinished: string }>(
        "SELECT count(*) AS runs, count(DISTINCT build_id) AS builds, count(*) - count(finished_at) AS unfinished FROM executions"
      )
      const outcomes = await kiln.sql<{ outcome: string; n: string }>(
        "SELECT outcome, count(*) AS n FROM builds GROUP BY outcome"
      )
      const perOwner = await kiln.sql<{ owner: string; n: string }>(
        "SELECT owner, count(*) AS n FROM executions GROUP BY owner ORDER BY owner"
      )
      console.log(
        `race seed ${seed}: 4000 builds in ${seconds.toFixed(1)} s (${Math.round(4000 / seconds)}/s), ` +
          `runs ${totals!.runs}, duplicates ${Number(totals!.runs) - Number(totals!.builds)}, ` +
          `per process ${perOwner.map((p) => p.n).join("/")}`
      )
      expect(Number(totals!.runs)).toBe(4000)
      expect(Number(totals!.builds)).toBe(4000)
      expect(Number(totals!.unfinished)).toBe(0)
      expect(outcomes).toEqual([{ outcome: "success", n: "4000" }])
      expect(perOwner.filter((p) => Number(p.n) > 0)).toHaveLength(4)
      for (const p of processes) expect(p.output()).not.toMatch(/ERROR|LeaseLost|lease lost/)
    }, 240_000)
  }

  it("holds a cap of 1 active build per app across 4 processes: never 2 at once", async () => {
    const kiln = await fresh()
    const apps = await Promise.all(
      ["cap-a", "cap-b", "cap-c"].map((handle) => kiln.app("sleep 0.05", handle))
    )
    for (const { version } of apps) await queue(kiln, version.id, 25)
    const engine = { concurrency: 4, leaseMs: 15_000, pollIntervalMs: 100, limits: { perApp: 1 } }
    await Promise.all([1, 2, 3, 4].map((n) => kiln.start(`cap-${n}`, { engine })))
    await until("every build to stop", async () => {
      const [{ left }] = await kiln.sql<{ left: string }>(
        "SELECT count(*) AS left FROM builds WHERE phase <> 'stopped'"
      )
      return Number(left) === 0 ? true : undefined
    })
    const runs = await kiln.sql<{
      entity_id: string
      owner: string
      started_at: string
      finished_at: string
    }>(
      "SELECT b.entity_id, e.owner, e.started_at, e.finished_at FROM executions e JOIN builds b ON b.id = e.build_id ORDER BY b.entity_id, e.started_at"
    )
    expect(runs).toHaveLength(75)
    let overlaps = 0
    for (let i = 1; i < runs.length; i++) {
      const [before, after] = [runs[i - 1]!, runs[i]!]
      if (before.entity_id === after.entity_id && Number(after.started_at) < Number(before.finished_at))
        overlaps++
    }
    const owners = new Set(runs.map((r) => r.owner))
    console.log(
      `cap 1 per app: 75 builds of 3 apps on ${owners.size} processes, ${overlaps} overlapping runs`
    )
    expect(overlaps).toBe(0)
    expect(owners.size).toBeGreaterThan(1)
  }, 120_000)

  it("fences out a process paused past its lease: a peer reaps the build, and after SIGCONT it changes nothing", async () => {
    const kiln = await fresh()
    const { version } = await kiln.app("echo started; sleep 60")
    const engine = {
      concurrency: 1,
      leaseMs: 1_500,
      reapIntervalMs: 300,
      pollIntervalMs: 100,
      cancelPollMs: 100
    }
    const paused = await kiln.start("paused", { engine })
    const [id] = await queue(kiln, version.id, 1)
    await until("the build to run on the first process", async () => {
      const row = await buildRow(kiln, id!)
      return row.phase === "running" && row.owner === "paused" ? true : undefined
    })
    await kiln.start("peer", { engine })
    paused.child.kill("SIGSTOP")
    const reapedAt = Date.now()
    const lost = await until("the peer to reap the build", async () => {
      const row = await buildRow(kiln, id!)
      return row.phase === "stopped" ? row : undefined
    })
    expect(lost.outcome).toBe("lost")
    const snapshot = async () => ({
      build: await buildRow(kiln, id!),
      steps: await kiln.sql("SELECT * FROM build_steps WHERE build_id = $1 ORDER BY idx", [id]),
      logs: await kiln.sql("SELECT seq, text FROM log_lines WHERE build_id = $1 ORDER BY seq", [id])
    })
    const before = await snapshot()
    paused.child.kill("SIGCONT")
    // It wakes with heartbeats, log lines and a running step due: every write must be refused.
    await until("the paused process to stop its run", async () => {
      const [run] = await kiln.sql<{ finished_at: string | null }>(
        "SELECT finished_at FROM executions WHERE build_id = $1",
        [id]
      )
      return run?.finished_at !== null ? true : undefined
    })
    await sleep(2_000)
    expect(await snapshot()).toEqual(before)
    expect(paused.output()).toMatch(/lease lost/)
    console.log(`SIGSTOP: reaped ${Date.now() - reapedAt} ms after the pause; after SIGCONT 0 rows changed`)
  }, 60_000)

  it("reaps a build whose process was killed with SIGKILL, within lease + reap interval + 5 s", async () => {
    const kiln = await fresh()
    const { version } = await kiln.app("echo started; sleep 60")
    const leaseMs = 2_000
    const reapIntervalMs = 500
    const engine = { concurrency: 1, leaseMs, reapIntervalMs, pollIntervalMs: 100 }
    const doomed = await kiln.start("doomed", { engine })
    const [id] = await queue(kiln, version.id, 1)
    await until("the build to run", async () =>
      (await buildRow(kiln, id!)).phase === "running" ? true : undefined
    )
    await kiln.start("survivor", { engine })
    doomed.child.kill("SIGKILL")
    const killedAt = Date.now()
    const row = await until("the survivor to reap the build", async () => {
      const row = await buildRow(kiln, id!)
      return row.phase === "stopped" ? row : undefined
    })
    const elapsed = Date.now() - killedAt
    console.log(
      `SIGKILL: reaped ${elapsed} ms after the kill (lease ${leaseMs} ms, reap interval ${reapIntervalMs} ms)`
    )
    expect(row.outcome).toBe("lost")
    expect(elapsed).toBeLessThanOrEqual(leaseMs + reapIntervalMs + 5_000)
  }, 60_000)

  it("streams, through process A, the log of a build process B runs, and a cancel sent to A stops it on B", async () => {
    const kiln = await fresh()
    const lines = 200
    const script = Array.from(
      { length: lines },
      (_, i) => `echo line ${i + 1}${i % 10 === 9 ? "; sleep 0.05" : ""}`
    ).join("; ")
    const talker = await kiln.app(script)
    const sleeper = await kiln.app("echo started; sleep 60")
    const api: KilnProcess = await kiln.start("api", { http: true })
    await kiln.start("worker", { engine: { concurrency: 2, pollIntervalMs: 100, cancelPollMs: 100 } })
    const token = await kiln.run(
      Effect.map(
        Authenticator.issueToken({ name: "scale-out", role: "write", workspaceIds: "*", expiresAt: null }),
        ({ secret }) => secret
      )
    )
    const post = async (path: string, body: unknown) => {
      const response = await fetch(`${api.url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body)
      })
      return (await response.json()) as Record<string, unknown>
    }
    const follow = async (buildId: string, onLine?: (text: string) => void) => {
      const outcome = await openStream(api.url!, `/api/builds/${buildId}/logs/stream`, {
        token,
        onMessage: (message) => {
          if (message.type === "line") onLine?.(message.text as string)
        }
      })
      if (!("opened" in outcome)) throw new Error(outcome.refused.text)
      return outcome.opened
    }

    const talking = await post("/api/builds", { appVersionId: talker.version.id })
    const stream = await follow(talking.id as string)
    expect(await stream.closed).toBe(1000)
    const received = stream.messages.filter((m) => m.type === "line")
    expect(received.map((m) => m.seq)).toEqual(received.map((_, i) => i + 1))
    expect(received.filter((m) => m.stream !== "system").map((m) => m.text)).toEqual(
      Array.from({ length: lines }, (_, i) => `line ${i + 1}`)
    )
    expect(stream.messages.at(-1)).toMatchObject({ type: "end", status: "completed" })
    expect((await buildRow(kiln, talking.id as string)).owner).toBe("worker")

    const sleeping = await post("/api/builds", { appVersionId: sleeper.version.id })
    let sawStart = false
    const cancelled = await follow(sleeping.id as string, (text) => {
      sawStart ||= text === "started"
    })
    await until("the build to start on the worker", async () => (sawStart ? true : undefined))
    const asked = Date.now()
    expect(await post(`/api/builds/${sleeping.id}/cancel`, { reason: "stop it" })).toEqual({ success: true })
    expect(await cancelled.closed).toBe(1000)
    const stoppedIn = Date.now() - asked
    expect(cancelled.messages.at(-1)).toMatchObject({ type: "end", status: "cancelled" })
    const [run] = await kiln.sql<{ finished_at: string | null }>(
      "SELECT finished_at FROM executions WHERE build_id = $1",
      [sleeping.id]
    )
    expect(run?.finished_at).not.toBeNull()
    console.log(
      `across processes: ${received.length} lines streamed gap-free; cancel via A stopped B's build in ${stoppedIn} ms`
    )
  }, 60_000)
})
