import { describe, expect } from "@effect/vitest"
import { Clock, DateTime, Effect } from "effect"
import * as Access from "../../Access.ts"
import type { LogLine } from "../../LogLine.ts"
import { claimOne, type MakeStorage, queue, seed, test } from "./fixtures.ts"

const lines = (from: number, to: number, text: (seq: number) => string = (seq) => `line ${seq}`) =>
  Effect.map(
    Clock.currentTimeMillis,
    (ms): ReadonlyArray<LogLine> =>
      Array.from({ length: to - from + 1 }, (_, i) => ({
        seq: from + i,
        ts: DateTime.makeUnsafe(ms),
        stream: i % 3 === 0 ? "stderr" : "stdout",
        step: i % 2 === 0 ? "build" : null,
        text: text(from + i)
      }))
  )

const claimed = Effect.gen(function* () {
  const { storage, version } = yield* seed()
  yield* queue(version)
  return { storage, ...(yield* claimOne("engine")) }
})

/** Log lines: gapless seq, idempotent appends, fenced writes, paging, and the head+tail budget. */
export const logs = (name: string, make: MakeStorage) =>
  describe(`${name} › storage: logs and truncation`, () => {
    const it = test(make)

    it("appends lines and reads them back in order, page by page", () =>
      Effect.gen(function* () {
        const { storage, build, fence } = yield* claimed
        const written = yield* lines(1, 25, (seq) => `line ${seq} ✓ ünïcödé`)
        yield* storage.appendLogs(build.id, fence, written.slice(0, 10))
        yield* storage.appendLogs(build.id, fence, written.slice(10))
        const page1 = yield* storage.readLogs(Access.all, build.id, 0, 10)
        expect(page1.lines).toEqual(written.slice(0, 10))
        expect(page1.lastSeq).toBe(25)
        expect(page1.truncated).toBe(false)
        const page2 = yield* storage.readLogs(Access.all, build.id, 10, 100)
        expect(page2.lines).toEqual(written.slice(10))
        expect((yield* storage.readLogs(Access.all, build.id, 25, 10)).lines).toEqual([])
      }))

    it("treats a retried or overlapping batch as a no-op for the lines already stored", () =>
      Effect.gen(function* () {
        const { storage, build, fence } = yield* claimed
        const batch = yield* lines(1, 5)
        yield* storage.appendLogs(build.id, fence, batch)
        yield* storage.appendLogs(build.id, fence, batch)
        const overlap = yield* lines(4, 8, (seq) => `again ${seq}`)
        yield* storage.appendLogs(build.id, fence, overlap)
        const read = yield* storage.readLogs(Access.all, build.id, 0, 100)
        expect(read.lines.map((l) => l.text)).toEqual([
          "line 1",
          "line 2",
          "line 3",
          "line 4",
          "line 5",
          "again 6",
          "again 7",
          "again 8"
        ])
        yield* storage.appendLogs(build.id, fence, [])
        expect((yield* storage.readLogs(Access.all, build.id, 0, 100)).lastSeq).toBe(8)
      }))

    it("refuses a batch that leaves a gap, storing none of it", () =>
      Effect.gen(function* () {
        const { storage, build, fence } = yield* claimed
        yield* storage.appendLogs(build.id, fence, yield* lines(1, 3))
        const gap = yield* Effect.flip(storage.appendLogs(build.id, fence, yield* lines(5, 6)))
        expect(gap._tag).toBe("LogSequenceGap")
        const inner = yield* lines(4, 6)
        const holed = yield* Effect.flip(storage.appendLogs(build.id, fence, [inner[0]!, inner[2]!]))
        expect(holed._tag).toBe("LogSequenceGap")
        expect((yield* storage.readLogs(Access.all, build.id, 0, 100)).lastSeq).toBe(3)
      }))

    it("accepts lines only from the build's owner, and shows them only inside its workspace", () =>
      Effect.gen(function* () {
        const { storage, build, fence } = yield* claimed
        const stale = yield* Effect.flip(
          storage.appendLogs(build.id, { ...fence, owner: "intruder" }, yield* lines(1, 1))
        )
        expect(stale._tag).toBe("LeaseLost")
        const other = yield* storage.createWorkspace({ name: "other" })
        const hidden = yield* Effect.flip(storage.readLogs(Access.workspaces([other.id]), build.id, 0, 10))
        expect(hidden._tag).toBe("StorageNotFound")
        expect((yield* storage.readLogs(Access.all, build.id, 0, 10)).lines).toEqual([])
      }))

    it("stores the last lines and then the final state, or neither", () =>
      Effect.gen(function* () {
        const { storage, build, fence } = yield* claimed
        const at = DateTime.makeUnsafe(yield* Clock.currentTimeMillis)
        const running = yield* storage.appendAndTransition(build.id, fence, yield* lines(1, 2), [
          { _tag: "Started", at, ...fence }
        ])
        expect(running.phase).toBe("running")
        const succeeded = { _tag: "Succeeded", at, ...fence, imageTag: null, imageDigest: null } as const
        const gap = yield* Effect.flip(
          storage.appendAndTransition(build.id, fence, yield* lines(4, 4), [succeeded])
        )
        expect(gap._tag).toBe("LogSequenceGap")
        const stale = yield* Effect.flip(
          storage.appendAndTransition(build.id, { ...fence, owner: "intruder" }, yield* lines(3, 3), [
            { ...succeeded, owner: "intruder" }
          ])
        )
        expect(stale._tag).toBe("LeaseLost")
        const held = yield* storage.getBuild(Access.all, build.id)
        expect(held.phase).toBe("running")
        expect((yield* storage.readLogs(Access.all, build.id, 0, 100)).lastSeq).toBe(2)
        const done = yield* storage.appendAndTransition(build.id, fence, yield* lines(3, 4), [succeeded])
        expect(done.outcome).toBe("success")
        expect((yield* storage.getBuild(Access.all, build.id)).outcome).toBe("success")
        const read = yield* storage.readLogs(Access.all, build.id, 0, 100)
        expect(read.lines.map((line) => line.seq)).toEqual([1, 2, 3, 4])
        const late = yield* Effect.flip(storage.appendAndTransition(build.id, fence, [], [succeeded]))
        expect(["InvalidTransition", "LeaseLost"]).toContain(late._tag)
      }))

    it("stores a short build's whole record at once: its lines, then running, then its final state", () =>
      Effect.gen(function* () {
        const { storage, build, fence } = yield* claimed
        const at = DateTime.makeUnsafe(yield* Clock.currentTimeMillis)
        const intruder = { ...fence, owner: "intruder" }
        const stale = yield* Effect.flip(
          storage.appendAndTransition(build.id, intruder, yield* lines(1, 3), [
            { _tag: "Started", at, ...intruder },
            { _tag: "Failed", at, ...intruder, error: "exit 1" }
          ])
        )
        expect(stale._tag).toBe("LeaseLost")
        expect((yield* storage.getBuild(Access.all, build.id)).phase).toBe("initializing")
        const done = yield* storage.appendAndTransition(build.id, fence, yield* lines(1, 3), [
          { _tag: "Started", at, ...fence },
          { _tag: "Failed", at, ...fence, error: "exit 1" }
        ])
        expect(done).toMatchObject({ phase: "stopped", outcome: "failure", error: "exit 1" })
        expect(done.runningAt).not.toBeNull()
        expect(yield* storage.getBuild(Access.all, build.id)).toMatchObject(done)
        const read = yield* storage.readLogs(Access.all, build.id, 0, 10)
        expect(read.lines.map((line) => line.seq)).toEqual([1, 2, 3])
      }))

    it(
      "keeps the head, trims the oldest tail lines and says what it dropped",
      () =>
        Effect.gen(function* () {
          const { storage, build, fence } = yield* claimed
          // 10-byte lines ("line 00001"): a 50-byte head holds 5 lines, a 100-byte tail 10.
          const text = (seq: number) => `line ${String(seq).padStart(5, "0")}`
          for (let from = 1; from <= 100; from += 7) {
            yield* storage.appendLogs(build.id, fence, yield* lines(from, Math.min(from + 6, 100), text))
          }
          const read = yield* storage.readLogs(Access.all, build.id, 0, 1000)
          expect(read.truncated).toBe(true)
          expect(read.lastSeq).toBe(100)
          const seqs = read.lines.map((l) => l.seq)
          expect(seqs).toEqual([1, 2, 3, 4, 5, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100])
          const marker = read.lines[5]!
          expect(marker).toMatchObject({ stream: "system", step: null, seq: 90 })
          expect(marker.text).toContain("85 lines (850 B) dropped")
          expect(read.lines.slice(6).map((l) => l.text)).toEqual(
            Array.from({ length: 10 }, (_, i) => text(91 + i))
          )
          const fromInside = yield* storage.readLogs(Access.all, build.id, 40, 3)
          expect(fromInside.lines.map((l) => l.seq)).toEqual([90, 91, 92])
          const pastHead = yield* storage.readLogs(Access.all, build.id, 3, 3)
          expect(pastHead.lines.map((l) => l.seq)).toEqual([4, 5, 90])
          const afterMarker = yield* storage.readLogs(Access.all, build.id, 90, 2)
          expect(afterMarker.lines.map((l) => l.seq)).toEqual([91, 92])
        }),
      { storage: { logBudget: { headBytes: 50, tailBytes: 100 } } }
    )

    it(
      "counts bytes, not characters, against the budget",
      () =>
        Effect.gen(function* () {
          const { storage, build, fence } = yield* claimed
          // Each "€" is 3 bytes: 4 of them fill a 12-byte head exactly, the next line goes to the tail.
          yield* storage.appendLogs(build.id, fence, yield* lines(1, 5, () => "€€€€"))
          const read = yield* storage.readLogs(Access.all, build.id, 0, 100)
          expect(read.truncated).toBe(true)
          expect(read.lines.map((l) => l.seq)).toEqual([1, 3, 4, 5])
          expect(read.lines[1]!.text).toContain("2 lines (24 B) dropped")
        }),
      { storage: { logBudget: { headBytes: 12, tailBytes: 24 } } }
    )
  })
