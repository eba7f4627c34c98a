import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { ArchiveStore } from "@kiln/core"
import { ArchiveStoreConformance } from "@kiln/core/testing"
import { Deferred, Duration, Effect, Fiber, Stream } from "effect"
import { afterAll, describe } from "vitest"

const root = mkdtempSync(join(tmpdir(), "kiln-archives-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))
let made = 0
const fresh = () => join(root, `store-${++made}`)

ArchiveStoreConformance.all("directory", () => ArchiveStore.layer({ directory: fresh() }))

describe("directory archive store", () => {
  it.live("writes a put under a hidden partial name, and leaves no partial file however the put ends", () => {
    const directory = fresh()
    return Effect.gen(function* () {
      const store = yield* ArchiveStore.ArchiveStore
      const { blob, body } = ArchiveStoreConformance.blobOf(256 * 1024)
      const started = yield* Deferred.make<void>()
      const stalled = Stream.concat(
        Stream.take(body, 1).pipe(Stream.ensuring(Deferred.succeed(started, undefined))),
        Stream.never
      )
      const fiber = yield* Effect.forkChild(store.put({ body: stalled }))
      yield* Deferred.await(started)
      yield* Effect.sleep("50 millis")
      expect(readdirSync(directory)).toEqual([expect.stringMatching(/^\.[0-9a-f-]+\.partial$/)])
      expect(yield* store.stale(Duration.zero, undefined, 10)).toEqual([])
      yield* Fiber.interrupt(fiber)
      expect(readdirSync(directory)).toEqual([])
      yield* store.put({ body })
      yield* store.put({ body })
      expect(readdirSync(directory)).toEqual([`${blob.sha256}.tar.gz`])
    }).pipe(Effect.provide(ArchiveStore.layer({ directory })))
  })
})
