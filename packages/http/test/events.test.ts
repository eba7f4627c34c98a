/**
 * The event feed on the real server: `GET /api/events` paged by cursor, filtered by type and workspace and
 * scoped by the token; its WebSocket, which replays from a cursor and then follows, refuses before the
 * upgrade, and closes a follower that stops reading with the cursor to resume from; and 1,000 builds run
 * by the engine (with the scripted runner) while a consumer is cut off 30 times and resumes each time.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { Runner } from "@kiln/core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  call,
  readyVersion,
  startServer,
  type TestServer,
  until,
  workspaceWithApp
} from "./fixtures/server.ts"
import { type Opened, openStream } from "./fixtures/websocket.ts"

type Message = Record<string, unknown>

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

/** A workspace of its own with a ready version, `builds` builds of it, and a write token for it alone. */
const workspaceWithBuilds = async (target: TestServer, builds: number, metadata: object = {}) => {
  const { workspace, app } = await workspaceWithApp(target)
  const version = await readyVersion(target, app.id)
  const ids: Array<string> = []
  for (let i = 0; i < builds; i++) {
    const build = await call(target, "POST", "/api/builds", { body: { appVersionId: version.id, metadata } })
    ids.push(build.body.id)
  }
  const token = await target.token("write", [workspace.id] as never)
  return { workspaceId: workspace.id, appId: app.id, versionId: version.id, builds: ids, token }
}

/** Every event the token sees after `after`, read a page of `limit` at a time by following the cursor. */
const readAll = async (target: TestServer, token: string, query = "", limit = 1000) => {
  const events: Array<Message> = []
  let after: string | undefined
  while (true) {
    const cursor = after === undefined ? "" : `&after=${after}`
    const page = await call(target, "GET", `/api/events?limit=${limit}${query}${cursor}`, { token })
    expect(page.status, page.text).toBe(200)
    events.push(...page.body.data)
    if (page.body.data.length === 0) {
      expect(page.body.cursor).toBe(after ?? null)
      return events
    }
    expect(page.body.cursor).toBe(page.body.data.at(-1).cursor)
    after = page.body.cursor
  }
}

const idsOf = (events: ReadonlyArray<Message>) => events.map((event) => event.id)

const opened = async (
  target: TestServer,
  path: string,
  token: string,
  onMessage?: (m: Message, cut: () => void) => void
) => {
  const outcome = await openStream(target.url, path, { token, onMessage })
  if (!("opened" in outcome)) throw new Error(outcome.refused.text)
  return outcome.opened
}

describe("http › event feed", () => {
  it("pages the feed by cursor: every event once, in order, and a cursor to keep polling with", async () => {
    const arranged = await workspaceWithBuilds(server, 30)
    const all = await readAll(server, arranged.token)
    expect(all.map((event) => event.type)).toEqual(["app_version.ready", ...Array(30).fill("build.queued")])
    expect(all.slice(1).map((event) => event.subject)).toEqual(arranged.builds)
    expect(all[1]).toEqual({
      id: expect.stringMatching(/^msg_/),
      cursor: expect.any(String),
      type: "build.queued",
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      workspaceId: arranged.workspaceId,
      subject: arranged.builds[0],
      data: { build: expect.objectContaining({ id: arranged.builds[0], status: "pending" }) }
    })
    expect(new Set(idsOf(all)).size).toBe(all.length)
    // Pages of 7 hold the same events, each once, in the same order.
    expect(idsOf(await readAll(server, arranged.token, "", 7))).toEqual(idsOf(all))
    // From any event's cursor on: the events after it.
    const from = await call(server, "GET", `/api/events?after=${all[12]!.cursor}&limit=5`, {
      token: arranged.token
    })
    expect(idsOf(from.body.data)).toEqual(idsOf(all.slice(13, 18)))
    // Nothing new: the cursor sent comes back, so a poller passes it on as it is; nothing at all: null.
    const caughtUp = await call(server, "GET", `/api/events?after=${all.at(-1)!.cursor}`, {
      token: arranged.token
    })
    expect(caughtUp.body).toEqual({ data: [], cursor: all.at(-1)!.cursor })
    const empty = (await workspaceWithApp(server)).workspace.id
    expect((await call(server, "GET", `/api/events?workspace_id=${empty}`)).body).toEqual({
      data: [],
      cursor: null
    })
    // What happens next is after the cursor.
    await call(server, "POST", "/api/builds", { body: { appVersionId: arranged.versionId } })
    const next = await call(server, "GET", `/api/events?after=${caughtUp.body.cursor}`, {
      token: arranged.token
    })
    expect(next.body.data.map((event: Message) => event.type)).toEqual(["build.queued"])
  })

  it("narrows by type and workspace, and shows a token only its workspaces' events", async () => {
    const mine = await workspaceWithBuilds(server, 3)
    const theirs = await workspaceWithBuilds(server, 2)
    const queued = await readAll(server, mine.token, "&types=build.queued")
    expect(queued.map((event) => event.subject)).toEqual(mine.builds)
    const both = await readAll(server, mine.token, "&types=build.queued,app_version.ready,build.queued")
    expect(both).toEqual(await readAll(server, mine.token))
    expect(await readAll(server, mine.token, "&types=build.finished")).toEqual([])
    // The token sees its workspace's events and no other's.
    expect(new Set((await readAll(server, mine.token)).map((event) => event.workspaceId))).toEqual(
      new Set([mine.workspaceId])
    )
    const foreign = await call(server, "GET", `/api/events?workspace_id=${theirs.workspaceId}`, {
      token: mine.token
    })
    expect([foreign.status, foreign.body.message]).toEqual([404, `workspace ${theirs.workspaceId} not found`])
    // An all-workspaces token sees both, and narrows to one with workspace_id.
    const narrowed = await readAll(server, server.admin, `&workspace_id=${theirs.workspaceId}`)
    expect(narrowed).toEqual(await readAll(server, theirs.token))
    const everything = idsOf(await readAll(server, server.admin))
    for (const id of idsOf([...(await readAll(server, mine.token)), ...narrowed]))
      expect(everything).toContain(id)
  })

  it("refuses a malformed cursor, an unknown type and a limit out of range with a 400 that names it", async () => {
    const refusals: ReadonlyArray<[string, string, string]> = [
      ["after=abc", "invalid_cursor", "after: "],
      ["after=1.2.3", "invalid_cursor", "after: "],
      ["after=-1", "invalid_cursor", "after: "],
      [`after=${"9".repeat(21)}`, "invalid_cursor", "after: "],
      ["after=", "invalid_cursor", "after: "],
      ["types=build.nope", "invalid_parameter", "types[0]: expected one of build.queued"],
      ["types=build.queued,", "invalid_parameter", "types[1]: "],
      ["types=BUILD.QUEUED", "invalid_parameter", "types[0]: "],
      ["limit=0", "invalid_parameter", "limit: expected an integer from 1 to 1000"],
      ["limit=1001", "invalid_parameter", "limit: expected an integer from 1 to 1000"],
      ["limit=ten", "invalid_parameter", "limit: "]
    ]
    for (const [query, error, message] of refusals) {
      const reply = await call(server, "GET", `/api/events?${query}`)
      expect([query, reply.status, reply.body.error]).toEqual([query, 400, error])
      expect(reply.body.message.startsWith(message), reply.body.message).toBe(true)
    }
    const unknown = await call(server, "GET", "/api/events?workspace_id=nope")
    expect([unknown.status, unknown.body.message]).toEqual([404, "workspace nope not found"])
    expect((await call(server, "GET", "/api/events", { token: undefined })).status).toBe(401)
    expect((await call(server, "GET", "/api/events?limit=1000")).status).toBe(200)
  })
})

describe("http › event stream", () => {
  it("replays the events after the cursor, then follows new ones as they happen, as the pages show them", async () => {
    const arranged = await workspaceWithBuilds(server, 10)
    const before = await readAll(server, arranged.token)
    const stream = await opened(server, `/api/events/stream?after=${before[4]!.cursor}`, arranged.token)
    await until(() => stream.messages.length >= 6)
    expect(stream.messages).toEqual(before.slice(5))
    for (let i = 0; i < 5; i++)
      await call(server, "POST", "/api/builds", { body: { appVersionId: arranged.versionId } })
    await until(() => stream.messages.length >= 11)
    const after = await readAll(server, arranged.token)
    expect(after).toHaveLength(16)
    expect(stream.messages).toEqual(after.slice(5))
    stream.cut()

    // From the start without a cursor, and only the types asked for.
    const queued = await opened(server, "/api/events/stream?types=build.queued", arranged.token)
    await until(() => queued.messages.length >= 15)
    expect(queued.messages).toEqual(after.filter((event) => event.type === "build.queued"))
    queued.cut()
  })

  it("refuses before the upgrade in the API's error body, and takes the token as a subprotocol", async () => {
    const arranged = await workspaceWithBuilds(server, 1)
    const other = (await workspaceWithApp(server)).workspace.id
    const refused = async (path: string, token: string | undefined) => {
      const outcome = await openStream(server.url, path, { token })
      if ("opened" in outcome) {
        outcome.opened.cut()
        throw new Error(`${path} opened`)
      }
      return [outcome.refused.status, outcome.refused.body.error, outcome.refused.body.message]
    }
    expect(await refused("/api/events/stream", undefined)).toEqual([401, "unauthorized", expect.any(String)])
    expect(await refused("/api/events/stream", "kiln_pat_nope")).toEqual([
      401,
      "unauthorized",
      expect.any(String)
    ])
    expect(await refused("/api/events/stream?after=x", arranged.token)).toEqual([
      400,
      "invalid_cursor",
      expect.stringMatching(/^after: /)
    ])
    expect(await refused("/api/events/stream?types=build.nope", arranged.token)).toEqual([
      400,
      "invalid_parameter",
      expect.stringMatching(/^types\[0\]: /)
    ])
    expect(await refused(`/api/events/stream?workspace_id=${other}`, arranged.token)).toEqual([
      404,
      "not_found",
      `workspace ${other} not found`
    ])
    const plain = await call(server, "GET", "/api/events/stream", { token: arranged.token })
    expect([plain.status, plain.body.error, plain.headers.get("upgrade")]).toEqual([
      426,
      "upgrade_required",
      "websocket"
    ])

    const outcome = await openStream(server.url, "/api/events/stream", {
      token: arranged.token,
      asProtocol: true,
      protocols: ["kiln"]
    })
    if (!("opened" in outcome)) throw new Error(outcome.refused.text)
    expect(outcome.opened.protocol).toBe("kiln")
    await until(() => outcome.opened.messages.length >= 2)
    expect(outcome.opened.messages.map((m) => m.type)).toEqual(["app_version.ready", "build.queued"])
    outcome.opened.cut()
  })
})

describe("http › event stream › a follower that stops reading", () => {
  const stallTimeoutMs = 1000
  let slow: TestServer
  beforeAll(async () => {
    slow = await startServer({ logStream: { stallTimeoutMs } })
  })
  afterAll(() => slow?.close())

  it("is closed with 4008 and the cursor to resume from, after every event sent, and resumes with no gap", async () => {
    // About 18 MB of events, far past the 1 MiB bound and the kernel's socket buffers.
    const metadata = { padding: "x".repeat(60_000) }
    const arranged = await workspaceWithBuilds(slow, 300, metadata)
    const follower = await opened(slow, "/api/events/stream", arranged.token)
    follower.pause()
    await new Promise((resolve) => setTimeout(resolve, stallTimeoutMs + 2000))
    follower.resume()
    expect(await follower.closed).toBe(4008)
    const cursor = /^slow consumer: resume from cursor (\S+)$/.exec(await follower.reason)?.[1]
    const seen = follower.messages
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.length).toBeLessThan(301)
    expect(cursor).toBe(seen.at(-1)!.cursor)
    const resumed = await opened(slow, `/api/events/stream?after=${cursor}`, arranged.token)
    await until(() => seen.length + resumed.messages.length >= 301)
    const all = await readAll(slow, arranged.token, "", 50)
    expect(idsOf([...seen, ...resumed.messages])).toEqual(idsOf(all))
    resumed.cut()
  })
})

describe("http › event stream › 1,000 builds through the engine", () => {
  let engine: TestServer
  beforeAll(async () => {
    engine = await startServer({
      engine: { runner: Runner.layerTest, options: { concurrency: 8, pollIntervalMs: 50 } }
    })
  })
  afterAll(() => engine?.close())

  /** An app whose builds run one scripted command, and a version of it from an uploaded archive. */
  const scriptedVersion = async () => {
    const { workspace, app } = await workspaceWithApp(engine, {
      strategy: "commands",
      buildCommand: "echo built"
    })
    const dir = join(engine.dir, "source")
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, "README"), "events\n")
    const version = await call(engine, "POST", "/api/app-versions", {
      body: { appId: app.id, source: { type: "archive" } }
    })
    const uploaded = await call(engine, "POST", `/api/app-versions/${version.body.id}/archive`, {
      body: new Uint8Array(gzipSync(execFileSync("tar", ["-c", "-C", dir, "."]))),
      headers: { "content-type": "application/gzip" }
    })
    expect(uploaded.body.status, uploaded.text).toBe("ready")
    return { workspaceId: workspace.id, versionId: version.body.id as string }
  }

  it("delivers every event exactly once, in order, to a consumer cut off 30 times that resumes from its last cursor", async () => {
    const builds = 1000
    const cuts = 30
    const { workspaceId, versionId } = await scriptedVersion()
    const token = await engine.token("read", [workspaceId] as never)

    const received: Array<Message> = []
    let cut = 0
    let stop = false
    let current: Opened | undefined
    const consuming = (async () => {
      while (!stop) {
        const after = received.at(-1)?.cursor
        current = await opened(
          engine,
          `/api/events/stream${after === undefined ? "" : `?after=${after}`}`,
          token,
          (message, drop) => {
            received.push(message)
            // Cut every 150 events until 30 cuts, so that they land while builds are queued, run and finish.
            if (cut < cuts && received.length % 150 === 0) {
              cut++
              drop()
            }
          }
        )
        await current.closed
      }
    })()

    const started = Date.now()
    for (let made = 0; made < builds; made += 20) {
      await Promise.all(
        Array.from({ length: 20 }, () =>
          call(engine, "POST", "/api/builds", { body: { appVersionId: versionId } }).then((reply) =>
            expect(reply.status, reply.text).toBe(201)
          )
        )
      )
    }
    const finished = () => received.filter((event) => event.type === "build.finished").length
    await until(() => finished() >= builds, 240_000)
    const feed = await readAll(engine, token)
    await until(() => received.length >= feed.length, 10_000)
    stop = true
    current?.cut()
    await consuming

    console.log(
      `event stream: ${builds} builds, ${feed.length} events in ${((Date.now() - started) / 1000).toFixed(1)} s, consumer cut ${cut} times`
    )
    expect(cut).toBe(cuts)
    expect(idsOf(received)).toEqual(idsOf(feed))
    expect(new Set(idsOf(received)).size).toBe(received.length)
    expect(received.filter((event) => event.type === "build.queued")).toHaveLength(builds)
    const outcomes = received.flatMap((event) =>
      event.type === "build.finished" ? [(event.data as { build: { status: string } }).build.status] : []
    )
    expect(new Set(outcomes)).toEqual(new Set(["completed"]))
    // Each build's events in the order they happened: queued first, finished last.
    const bySubject = new Map<unknown, Array<unknown>>()
    for (const event of received)
      bySubject.set(event.subject, [...(bySubject.get(event.subject) ?? []), event.type])
    for (const [subject, types] of bySubject) {
      if (types[0] === "app_version.ready") continue
      expect([subject, types[0], types.at(-1)]).toEqual([subject, "build.queued", "build.finished"])
    }
  }, 300_000)
})
