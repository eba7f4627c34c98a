/**
 * Many followers of one build's log share its pages: each page is read from storage once (or a few times,
 * as followers drift apart), not once per follower, and every follower still gets every line once, in
 * order, then the end. Real server (SQLite), real `ws` clients; the build is written through storage.
 */
import type { Storage } from "@kiln/core"
import { afterAll, beforeAll, expect, it } from "vitest"
import {
  byHand,
  call,
  readyVersion,
  startServer,
  type TestServer,
  workspaceWithApp
} from "./fixtures/server.ts"
import { openStream } from "./fixtures/websocket.ts"

const followers = 20
const batches = 20
const linesPerBatch = 250
const pageReads = new Map<string, number>()

let server: TestServer
beforeAll(async () => {
  server = await startServer({
    storage: (storage): Storage.StorageShape => ({
      ...storage,
      readLogs: (access, id, afterSeq, limit) => {
        // The stream reads whole pages of 1,000; a read of 1 is its last look before the end.
        if (limit === 1000) pageReads.set(id, (pageReads.get(id) ?? 0) + 1)
        return storage.readLogs(access, id, afterSeq, limit)
      }
    })
  })
})
afterAll(() => server.close())

it(`serves ${followers} followers of one build from shared pages, every line to each`, async () => {
  const { app } = await workspaceWithApp(server)
  const version = await readyVersion(server, app.id)
  const build = (await call(server, "POST", "/api/builds", { body: { appVersionId: version.id } })).body
  const engine = await byHand(server, build.id)
  const streams = await Promise.all(
    Array.from({ length: followers }, async () => {
      const opened = await openStream(server.url, `/api/builds/${build.id}/logs/stream`, {
        token: server.admin
      })
      if (!("opened" in opened)) throw new Error(`refused: ${JSON.stringify(opened.refused)}`)
      return opened.opened
    })
  )
  for (let batch = 0; batch < batches; batch++) await engine.log(linesPerBatch)
  await engine.succeed()
  const lines = batches * linesPerBatch
  for (const stream of streams) {
    expect(await stream.closed).toBe(1000)
    const seqs = stream.messages.filter((m) => m.type === "line").map((m) => m.seq)
    expect(seqs).toEqual(Array.from({ length: lines }, (_, i) => i + 1))
    expect(stream.messages.at(-1)).toMatchObject({ type: "end", status: "completed" })
  }
  // Unshared, each follower reads once or more per batch it wakes for (140 reads in all when measured);
  // shared, 7.
  const reads = pageReads.get(build.id) ?? 0
  expect(reads).toBeGreaterThan(0)
  expect(reads).toBeLessThan((followers * batches) / 8)
})
