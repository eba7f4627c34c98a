/**
 * Builds over HTTP end to end, with the engine and the real Docker runner behind the server: an archive
 * uploaded through the API is built, its log arrives over the WebSocket, and a client cut 30 times while
 * a 20,000-line build runs resumes each time from its last cursor with no gap and no duplicate.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import * as DockerTesting from "@kiln/runner-docker/testing"
import { Effect, Stream } from "effect"
import { afterAll, beforeAll, expect, it } from "vitest"
import { call, startServer, type TestServer, workspaceWithApp } from "./fixtures/server.ts"
import { openStream } from "./fixtures/websocket.ts"

const namespace = `kiln-http-e2e-${process.pid}`
let server: TestServer

beforeAll(async () => {
  if (DockerTesting.unavailable === undefined) {
    server = await startServer({ engine: { namespace, options: { concurrency: 2 } } })
  }
})
afterAll(async () => {
  await server?.close()
  if (DockerTesting.unavailable === undefined) DockerTesting.removeNamespace(namespace)
})

/** Creates an archive version through the API from these files, uploaded as application/gzip. */
const uploadVersion = async (appId: string, name: string, files: Record<string, string>) => {
  const dir = join(server.dir, name)
  mkdirSync(dir, { recursive: true })
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text)
  const version = await call(server, "POST", "/api/app-versions", {
    body: { appId, source: { type: "archive" } }
  })
  const uploaded = await call(server, "POST", `/api/app-versions/${version.body.id}/archive`, {
    body: new Uint8Array(gzipSync(execFileSync("tar", ["-c", "-C", dir, "."]))),
    headers: { "content-type": "application/gzip" }
  })
  expect(uploaded.body.status, uploaded.text).toBe("ready")
  return uploaded.body as { id: string }
}

DockerTesting.describeDocker("http › builds end to end (Docker)", () => {
  it("builds an uploaded archive, with its log over the WebSocket and the same log over REST", async () => {
    const { app } = await workspaceWithApp(server, { caching: false })
    const version = await uploadVersion(app.id, "hello", {
      Dockerfile:
        'FROM busybox\nCOPY greeting.txt .\nRUN echo "building over http" && cat greeting.txt\nCMD ["cat", "greeting.txt"]\n',
      "greeting.txt": "Hello over HTTP!\n"
    })
    const client = await server.client(server.admin)
    const build = await Effect.runPromise(
      client.builds.create({ payload: { appVersionId: version.id }, headers: {} })
    )
    const messages = await Effect.runPromise(Stream.runCollect(client.followLogs(build.id)))
    const end = messages.at(-1)
    expect(end).toMatchObject({ type: "end", status: "completed" })
    const statuses = messages.flatMap((m) => (m.type === "status" ? [m.status] : []))
    expect(statuses.at(-1)).toBe("completed")
    const lines = messages.flatMap((m) => (m.type === "line" ? [m] : []))
    expect(lines.map((l) => l.seq)).toEqual(lines.map((_, i) => i + 1))
    expect(lines.map((l) => l.text)).toEqual(
      expect.arrayContaining(["building over http", "Hello over HTTP!"])
    )
    const done = await Effect.runPromise(client.builds.get({ params: { id: build.id } }))
    expect(done.status).toBe("completed")
    expect(done.steps.map((s) => s.status)).toEqual(["succeeded", "succeeded", "succeeded", "succeeded"])
    expect(DockerTesting.docker("run", "--rm", done.imageTag!)).toBe("Hello over HTTP!")
    const page = await call(server, "GET", `/api/builds/${build.id}/logs?limit=10000`)
    expect(page.body.complete).toBe(true)
    expect(page.body.data.map((l: { text: string }) => l.text)).toEqual(lines.map((l) => l.text))
  })

  it("resumes a stream cut 30 times while 20,000 lines are written: every seq once, in order", async () => {
    const total = 20_000
    const { app } = await workspaceWithApp(server, { caching: false })
    // Pauses now and then, so that many cuts land while the build is still writing.
    const script = `i=0; while [ $i -lt ${total} ]; do i=$((i+1)); echo "n $i"; if [ $((i % 1000)) -eq 0 ]; then sleep 0.3; fi; done`
    const version = await uploadVersion(app.id, "counter", { Dockerfile: `FROM busybox\nRUN ${script}\n` })
    const build = (await call(server, "POST", "/api/builds", { body: { appVersionId: version.id } })).body
    const cuts = Array.from({ length: 30 }, () => 1 + Math.floor(Math.random() * (total - 1))).sort(
      (x, y) => x - y
    )
    const seqs: Array<number> = []
    const numbered: Array<number> = []
    let cursor: string | undefined
    let connections = 0
    let ended = false
    let cutsWhileRunning = 0
    while (!ended) {
      connections++
      const path = `/api/builds/${build.id}/logs/stream${cursor === undefined ? "" : `?cursor=${cursor}`}`
      let running = false
      let cutHere = false
      const outcome = await openStream(server.url, path, {
        token: server.admin,
        onMessage: (message, cut) => {
          if (cutHere) return
          if (message.type === "status") running = message.status === "running"
          if (message.type === "end") ended = true
          if (message.type !== "line") return
          seqs.push(message.seq as number)
          cursor = message.cursor as string
          const n = /^n (\d+)$/.exec(message.text as string)
          if (n !== null) numbered.push(Number(n[1]))
          if (cuts.length > 0 && numbered.length >= cuts[0]!) {
            cuts.shift()
            cutHere = true
            if (running) cutsWhileRunning++
            // As abruptly as a dropped network: whatever else is in flight is lost.
            cut()
          }
        }
      })
      if (!("opened" in outcome)) throw new Error(outcome.refused.text)
      await outcome.opened.closed
    }
    console.log(
      `stream resume: ${seqs.length} lines over ${connections} connections, ${connections - 1} cuts (${cutsWhileRunning} while the build ran)`
    )
    expect(connections).toBe(31)
    expect(numbered).toEqual(Array.from({ length: total }, (_, i) => i + 1))
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1))
  })
})
