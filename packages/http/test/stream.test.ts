/**
 * The log stream WebSocket with a real client (`ws`) and the typed client: live lines, status changes
 * and the final `end`; tokens by header or subprotocol; refusals before the upgrade; resuming from a
 * cursor. The engine's part is played through storage, so every step of the build is under the test's
 * control (the Docker end-to-end tests cover real builds).
 */
import { randomBytes } from "node:crypto"
import { get } from "node:http"
import { connect, createServer, type Socket } from "node:net"
import { Id } from "@kiln/core"
import { KilnClient } from "@kiln/http"
import { Effect, Stream } from "effect"
import { FetchHttpClient } from "effect/http"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  byHand,
  call,
  readyVersion,
  startServer,
  type TestServer,
  until,
  workspaceWithApp
} from "./fixtures/server.ts"
import { type Memory, type ServerProcess, serverProcess } from "./fixtures/server-process.ts"
import { openStream } from "./fixtures/websocket.ts"

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

const runningBuild = async () => {
  const { app } = await workspaceWithApp(server)
  const version = await readyVersion(server, app.id)
  const build = (await call(server, "POST", "/api/builds", { body: { appVersionId: version.id } })).body
  return { id: build.id as string, engine: await byHand(server, build.id) }
}

const streamPath = (id: string, cursor?: string) =>
  `/api/builds/${id}/logs/stream${cursor === undefined ? "" : `?cursor=${cursor}`}`

/**
 * A TCP proxy in front of a server, as a network is: `drop` cuts every connection it carries, and with
 * `holdMs` its first connection stops passing on what the server sends for that long, as a stuck client
 * would, then passes it all on. It counts log stream upgrades (a resumed stream may reuse a connection).
 */
const proxyTo = async (url: string, holdMs?: number) => {
  const sockets = new Set<Socket>()
  const target = new URL(url)
  let connections = 0
  let upgrades = 0
  const proxy = createServer((inbound) => {
    const outbound = connect(Number(target.port), target.hostname)
    for (const socket of [inbound, outbound]) {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
      socket.on("error", () => socket.destroy())
    }
    inbound.pipe(outbound).pipe(inbound)
    inbound.on("data", (chunk) => {
      upgrades += String(chunk).match(/^GET \S+\/logs\/stream\S* HTTP\/1\.1\r$/gm)?.length ?? 0
    })
    if (++connections === 1 && holdMs !== undefined) {
      outbound.once("data", () => {
        outbound.unpipe(inbound)
        outbound.pause()
        setTimeout(() => outbound.pipe(inbound), holdMs)
      })
    }
  })
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve))
  const drop = () => {
    for (const socket of sockets) socket.destroy()
  }
  return {
    url: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`,
    upgrades: () => upgrades,
    drop,
    close: () => {
      proxy.close()
      drop()
    }
  }
}

describe("http › log stream", () => {
  it("sends the log live, then status changes, then end and a normal close", async () => {
    const { id, engine } = await runningBuild()
    await engine.log(3)
    const outcome = await openStream(server.url, streamPath(id), { token: server.admin })
    if (!("opened" in outcome)) throw new Error(outcome.refused.text)
    const { messages, closed } = outcome.opened
    await until(() => messages.length >= 4)
    expect(messages[0]).toEqual({ type: "status", status: "running" })
    expect(messages[1]).toEqual({
      type: "line",
      seq: 1,
      ts: expect.any(String),
      stream: "stdout",
      step: null,
      text: "line 1",
      cursor: expect.any(String)
    })
    await engine.log(2)
    await until(() => messages.length >= 6)
    expect(messages.slice(4).map((m) => m.text)).toEqual(["line 4", "line 5"])
    await engine.succeed()
    expect(await closed).toBe(1000)
    expect(messages.slice(6)).toEqual([
      { type: "status", status: "completed" },
      { type: "end", status: "completed", cursor: messages[5]!.cursor }
    ])
    // The stream's cursors are the log pages' cursors: both resume at the same place.
    const page = await call(server, "GET", `/api/builds/${id}/logs?cursor=${messages[2]!.cursor}`)
    expect(page.body.data.map((l: { seq: number }) => l.seq)).toEqual([3, 4, 5])
  })

  it("resumes after a cursor with no gap and no duplicate, and ends at once on a finished log (by either id)", async () => {
    const { id, engine } = await runningBuild()
    await engine.log(50)
    await engine.succeed()
    const first = await openStream(server.url, streamPath(id), { token: server.admin })
    if (!("opened" in first)) throw new Error(first.refused.text)
    await first.opened.closed
    const lines = first.opened.messages.filter((m) => m.type === "line")
    expect(lines.map((m) => m.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1))
    const resumed = await openStream(server.url, streamPath(id, lines[29]!.cursor as string), {
      token: server.admin
    })
    if (!("opened" in resumed)) throw new Error(resumed.refused.text)
    expect(await resumed.opened.closed).toBe(1000)
    expect(resumed.opened.messages.filter((m) => m.type === "line").map((m) => m.seq)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 31)
    )
    // The build named by the UUID its id encodes, as the other surfaces name it.
    const atEnd = await openStream(server.url, streamPath(Id.toUuid(id), lines[49]!.cursor as string), {
      token: server.admin
    })
    if (!("opened" in atEnd)) throw new Error(atEnd.refused.text)
    await atEnd.opened.closed
    expect(atEnd.opened.messages).toEqual([
      { type: "status", status: "completed" },
      { type: "end", status: "completed", cursor: lines[49]!.cursor }
    ])
  })

  it("takes the token as the bearer.<token> subprotocol, answering kiln when offered or else the one given", async () => {
    const { id, engine } = await runningBuild()
    await engine.succeed()
    const withKiln = await openStream(server.url, streamPath(id), {
      token: server.admin,
      asProtocol: true,
      protocols: ["kiln"]
    })
    if (!("opened" in withKiln)) throw new Error(withKiln.refused.text)
    expect(withKiln.opened.protocol).toBe("kiln")
    await withKiln.opened.closed
    expect(withKiln.opened.messages.at(-1)).toMatchObject({ type: "end" })
    const alone = await openStream(server.url, streamPath(id), { token: server.admin, asProtocol: true })
    if (!("opened" in alone)) throw new Error(alone.refused.text)
    expect(alone.opened.protocol).toBe(`bearer.${server.admin}`)
    await alone.opened.closed
  })

  it("refuses before the upgrade, in the API's error body: no token 401, bad cursor 400, unknown build 404", async () => {
    const { id } = await runningBuild()
    const refusals = [
      [streamPath(id), undefined, 401, "unauthorized"],
      [streamPath(id), "kiln_pat_nope", 401, "unauthorized"],
      [streamPath(id, "garbage!"), server.admin, 400, "invalid_cursor"],
      [streamPath("bld_01jz0000000000000000000000"), server.admin, 404, "not_found"]
    ] as const
    for (const [path, token, status, error] of refusals) {
      const outcome = await openStream(server.url, path, { token })
      if (!("refused" in outcome)) throw new Error(`${path} opened`)
      expect([path, outcome.refused.status, outcome.refused.body.error]).toEqual([path, status, error])
    }
  })

  it("tells a plain GET, on the canonical and the deployments stream, that it needs a WebSocket (426)", async () => {
    const { app } = await workspaceWithApp(server)
    const version = await readyVersion(server, app.id)
    const build = (await call(server, "POST", "/api/builds", { body: { appVersionId: version.id } })).body
    for (const path of [
      streamPath(build.id),
      `/api/v1/deployments/${Id.toUuid(app.id as never)}/builds/${Id.toUuid(build.id)}/logs/stream`
    ]) {
      const reply = await call(server, "GET", path)
      expect([path, reply.status, reply.headers.get("upgrade")]).toEqual([path, 426, "websocket"])
      expect(reply.body).toEqual({ error: "upgrade_required", message: expect.stringMatching(/WebSocket/) })
    }
  })

  it("is followed by the typed client's followLogs, from the start or from a cursor", async () => {
    const { id, engine } = await runningBuild()
    await engine.log(10)
    const client = await server.client(server.admin)
    const collected = Effect.runPromise(Stream.runCollect(client.followLogs(id)))
    await engine.log(5)
    await engine.succeed()
    const messages = await collected
    const lines = messages.filter((m) => m.type === "line")
    expect(lines.map((m) => m.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1))
    expect(messages.at(-1)).toMatchObject({ type: "end", status: "completed" })
    const rest = await Effect.runPromise(
      Stream.runCollect(client.followLogs(id, { cursor: lines[11]!.cursor }))
    )
    expect(rest.filter((m) => m.type === "line").map((m) => m.seq)).toEqual([13, 14, 15])
    const refused = await Effect.runPromise(
      Effect.flip(Stream.runDrain(client.followLogs("bld_01jz0000000000000000000000")))
    )
    expect(refused.message).toMatch(/not found/)
  })

  it("resumes by itself in the typed client when the connection drops, from its last cursor", async () => {
    const { id, engine } = await runningBuild()
    await engine.log(100)
    const proxy = await proxyTo(server.url)
    try {
      const client = await Effect.runPromise(
        KilnClient.make({ baseUrl: proxy.url, token: server.admin }).pipe(
          Effect.provide(FetchHttpClient.layer)
        )
      )
      const seen: Array<number> = []
      let drops = 0
      const following = Effect.runPromise(
        Stream.runForEach(client.followLogs(id), (message) =>
          Effect.sync(() => {
            if (message.type !== "line") return
            seen.push(message.seq)
            // Drop every connection after the 30th and the 120th line.
            if (message.seq === 30 || message.seq === 120) {
              drops++
              proxy.drop()
            }
          })
        )
      )
      await until(() => seen.length >= 100)
      await engine.log(50)
      await until(() => seen.length >= 150)
      await engine.succeed()
      await following
      expect(drops).toBe(2)
      expect(seen).toEqual(Array.from({ length: 150 }, (_, i) => i + 1))
    } finally {
      proxy.close()
    }
  })
})

/** Opens the stream, failing the test if it is refused. */
const opened = async (url: string, path: string, token: string, paused?: boolean) => {
  const outcome = await openStream(url, path, { token, paused })
  if (!("opened" in outcome)) throw new Error(outcome.refused.text)
  return outcome.opened
}

const seqsOf = (messages: ReadonlyArray<Record<string, unknown>>) =>
  messages.filter((m) => m.type === "line").map((m) => m.seq as number)

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

const MiB = 1024 * 1024

/** A GET whose body the client never reads: resolves once the answer starts, with a way to drop it. */
const stuckDownload = (url: string, token: string) =>
  new Promise<{ readonly status: number | undefined; readonly drop: () => void }>((resolve, reject) => {
    const request = get(url, { headers: { authorization: `Bearer ${token}` } }, (response) => {
      response.pause()
      response.on("error", () => {})
      resolve({ status: response.statusCode, drop: () => request.destroy() })
    })
    request.on("error", reject)
  })

/**
 * Follows a stream over a bare TCP connection that, after the first 100 frames, sends a Close frame of its own
 * and reads nothing for 1.5 s, so the server's answer queues behind what it had already written. Resolves
 * with the opcode of every frame the server sent, in order, once it closed the connection.
 */
const closedByClient = (base: string, path: string, token: string) =>
  new Promise<Array<number>>((resolve, reject) => {
    const socket = connect(Number(new URL(base).port), "127.0.0.1")
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n` +
        `Authorization: Bearer ${token}\r\n\r\n`
    )
    let buffer = Buffer.alloc(0)
    let upgraded = false
    const opcodes: Array<number> = []
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      if (!upgraded) {
        const end = buffer.indexOf("\r\n\r\n")
        if (end < 0) return
        upgraded = true
        buffer = buffer.subarray(end + 4)
      }
      while (buffer.length >= 2) {
        const short = buffer[1]! & 0x7f
        const header = 2 + (short === 126 ? 2 : short === 127 ? 8 : 0)
        if (buffer.length < header) return
        const length =
          short < 126 ? short : short === 126 ? buffer.readUInt16BE(2) : Number(buffer.readBigUInt64BE(2))
        if (buffer.length < header + length) return
        opcodes.push(buffer[0]! & 0x0f)
        buffer = buffer.subarray(header + length)
        if (opcodes.length === 100) {
          // Code 1000, masked as a client's frames must be.
          const mask = randomBytes(4)
          const payload = Buffer.from([0x03, 0xe8].map((byte, i) => byte ^ mask[i]!))
          socket.write(Buffer.concat([Buffer.from([0x88, 0x82]), mask, payload]))
          socket.pause()
          setTimeout(() => socket.resume(), 1500)
        }
      }
    })
    socket.on("error", reject)
    socket.on("close", () => resolve(opcodes))
  })

/** What the server holds on to: its heap and the memory outside it (socket buffers), after a collection. */
const live = (memory: Memory) => memory.heapUsed + memory.external

describe("http › log stream › followers that stop reading (the server in a process of its own)", () => {
  // 40 MB of log, so that a follower's messages are far past its 1 MiB bound and the kernel's socket buffers.
  const lineCount = 40_000
  const text = (seq: number) => `line ${seq} `.padEnd(1000, "x")
  const stallTimeoutMs = 3000
  // Each stuck follower may hold 1 MiB unsent and the frames of the pages it comes from (1,000 lines here,
  // about 1 MB); each stuck download two pages, one as text; the followers' shared pages, kept while the stuck
  // ones have not read them, 16 MiB in all.
  const bound = 32 * MiB
  let remote: ServerProcess
  let id: string
  let appId: string
  beforeAll(async () => {
    remote = await serverProcess({
      logStream: { stallTimeoutMs },
      logBudget: { headBytes: MiB, tailBytes: 64 * MiB }
    })
    const { app } = await workspaceWithApp(remote)
    appId = app.id
    const version = await readyVersion(remote, app.id)
    id = (await call(remote, "POST", "/api/builds", { body: { appVersionId: version.id } })).body.id
    const engine = await byHand(remote, id)
    for (let added = 0; added < lineCount; added += 5000) await engine.log(5000, text)
    await engine.succeed()
  }, 120_000)
  afterAll(() => remote?.close())

  it("holds a bounded buffer for five followers and two text downloads that never read, sends a reader every line meanwhile, and lets go when they leave", async () => {
    const before = await remote.memory()
    // Stuck from the start: a follower that read while the others opened could take the whole log first.
    const stuck = await Promise.all(
      range(1, 5).map(() => opened(remote.url, streamPath(id), remote.admin, true))
    )
    // Both dialects' plain-text logs: the same code reads them from storage as the client takes them.
    const downloads = await Promise.all(
      [`/api/builds/${id}/logs?format=text`, `/api/v1/deployments/${appId}/builds/${id}/logs`].map((path) =>
        stuckDownload(`${remote.url}${path}`, remote.admin)
      )
    )
    expect(downloads.map((download) => download.status)).toEqual([200, 200])
    const reader = await opened(remote.url, streamPath(id), remote.admin)
    expect(await reader.closed).toBe(1000)
    expect(seqsOf(reader.messages)).toEqual(range(1, lineCount))
    expect(reader.messages.at(-1)).toMatchObject({ type: "end", status: "completed" })
    // The stuck followers had all the time the reader took to fill their buffers.
    const during = await remote.memory()
    for (const follower of stuck) follower.cut()
    for (const download of downloads) download.drop()
    await Promise.all(stuck.map((follower) => follower.closed))
    await new Promise((resolve) => setTimeout(resolve, 500))
    const after = await remote.memory()
    const figures = [before, during, after].map((m) => `${(live(m) / MiB).toFixed(0)} MiB`).join(" → ")
    expect(live(during) - live(before), figures).toBeLessThan(bound)
    expect(live(after) - live(before), figures).toBeLessThan(8 * MiB)
  })

  it("sends nothing after its answer to a Close frame from the client, however much it had left to send", async () => {
    const opcodes = await closedByClient(remote.url, streamPath(id), remote.admin)
    const answer = opcodes.indexOf(0x8)
    expect(answer).toBeGreaterThanOrEqual(100)
    expect(opcodes.slice(answer + 1)).toEqual([])
  })

  it("closes a follower that takes nothing for the stall timeout with 4008 and the cursor to resume from", async () => {
    const follower = await opened(remote.url, streamPath(id), remote.admin)
    follower.pause()
    await new Promise((resolve) => setTimeout(resolve, stallTimeoutMs + 3000))
    follower.resume()
    expect(await follower.closed).toBe(4008)
    // The close frame comes after every line sent: the cursor it names is the last line's.
    const cursor = /^slow consumer: resume from cursor (\S+)$/.exec(await follower.reason)?.[1]
    const seen = seqsOf(follower.messages)
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.length).toBeLessThan(lineCount)
    expect(seen).toEqual(range(1, seen.length))
    expect(cursor).toBe(follower.messages.at(-1)!.cursor)
    const resumed = await opened(remote.url, streamPath(id, cursor), remote.admin)
    expect(await resumed.closed).toBe(1000)
    expect(seqsOf(resumed.messages)).toEqual(range(seen.length + 1, lineCount))
  })

  it("is resumed after a 4008 by the typed client's followLogs by itself, with no gap", async () => {
    const proxy = await proxyTo(remote.url, stallTimeoutMs + 3000)
    try {
      const client = await Effect.runPromise(
        KilnClient.make({ baseUrl: proxy.url, token: remote.admin }).pipe(
          Effect.provide(FetchHttpClient.layer)
        )
      )
      const seen: Array<number> = []
      await Effect.runPromise(
        Stream.runForEach(client.followLogs(id), (message) =>
          Effect.sync(() => {
            if (message.type === "line") seen.push(message.seq)
          })
        )
      )
      expect(proxy.upgrades()).toBe(2)
      expect(seen).toEqual(range(1, lineCount))
    } finally {
      proxy.close()
    }
  })
})
