/**
 * A JSON log page says `complete: true` only when no line can follow it: a client stops paging there.
 * The build that stops between the handler's reads is arranged by wrapping a real (memory) storage's
 * `readLogs`, so the race happens every time instead of once in a while.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Authenticator, type LogLine, SourceStore, Storage } from "@kiln/core"
import { StorageConformance } from "@kiln/core/testing"
import { KilnHttp } from "@kiln/http"
import { Clock, DateTime, Effect, Layer } from "effect"
import { expect, it } from "vitest"

it("is not complete when the build stopped, with a last line, right after its page was read", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-log-pages-"))
  const arranged = { build: "", token: "" }
  const racing = Layer.effect(
    Storage.Storage,
    Effect.gen(function* () {
      const storage = yield* Storage.Storage
      const { version } = yield* StorageConformance.seed()
      yield* StorageConformance.queue(version)
      const { build, fence } = yield* StorageConformance.claimOne("racer")
      const at = yield* Clock.currentTimeMillis.pipe(Effect.map(DateTime.makeUnsafe))
      yield* storage.transition(build.id, { _tag: "Started", at, ...fence })
      const last: LogLine.LogLine = { seq: 1, ts: at, stream: "stdout", step: null, text: "the last line" }
      const stop = Effect.orDie(
        storage.appendAndTransition(
          build.id,
          fence,
          [last],
          [{ _tag: "Succeeded", at, ...fence, imageTag: null, imageDigest: null }]
        )
      )
      let raced = false
      arranged.build = build.id
      return Storage.Storage.of({
        ...storage,
        readLogs: (access, id, after, limit) =>
          storage.readLogs(access, id, after, limit).pipe(
            Effect.tap(() => {
              if (raced) return Effect.void
              raced = true
              return Effect.asVoid(stop)
            })
          )
      })
    })
  ).pipe(Layer.provide(Storage.layerMemory()))
  const services = Layer.mergeAll(
    Authenticator.layer,
    SourceStore.layer({ directory: join(dir, "sources") })
  ).pipe(Layer.provideMerge(racing))
  const { handler, dispose } = KilnHttp.toWebHandler(
    Layer.effectDiscard(
      Effect.map(
        Authenticator.issueToken({ name: "reader", workspaceIds: "*", role: "read", expiresAt: null }),
        ({ secret }) => {
          arranged.token = secret
        }
      )
    ).pipe(Layer.provideMerge(services))
  )
  try {
    // The handler builds its services on its first request: only then are the build and token arranged.
    await handler(new Request("http://kiln/api/openapi.json"))
    const read = async (cursor?: string) => {
      const query = cursor === undefined ? "" : `?cursor=${cursor}`
      const reply = await handler(
        new Request(`http://kiln/api/builds/${arranged.build}/logs${query}`, {
          headers: { authorization: `Bearer ${arranged.token}` }
        })
      )
      expect(reply.status).toBe(200)
      return (await reply.json()) as { data: Array<{ text: string }>; cursor: string; complete: boolean }
    }
    const first = await read()
    expect(first).toMatchObject({ data: [], complete: false })
    const next = await read(first.cursor)
    expect(next).toMatchObject({ data: [{ text: "the last line" }], complete: true })
  } finally {
    await dispose()
    rmSync(dir, { recursive: true, force: true })
  }
})
