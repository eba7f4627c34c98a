/**
 * Which pages the followers of a build share, and for how long (`logPages.ts`): a unit test of the cache's
 * rules against a log in an array, counting storage reads. That many followers of a real server share
 * their pages is `fanout.test.ts`'s; the memory a stuck follower holds is `stream.test.ts`'s.
 */
import { it } from "@effect/vitest"
import type { Id, LogLine } from "@kiln/core"
import { DateTime, Effect } from "effect"
import { TestClock } from "effect/testing"
import { expect } from "vitest"
import * as LogPages from "../src/internal/logPages.ts"

const buildId = "bld_cache" as Id.BuildId

/** A log of `count` lines that can grow, and the reads made of it, by the seq each started after. */
const arrange = (count: number, options: Partial<LogPages.LogPagesOptions> = {}) => {
  const lines: Array<LogLine.LogLine> = []
  const grow = (more: number) => {
    for (let n = 0; n < more; n++) {
      const seq = lines.length + 1
      lines.push({ seq, ts: DateTime.makeUnsafe(0), stream: "stdout", step: null, text: `line ${seq}` })
    }
  }
  grow(count)
  const reads: Array<number> = []
  let expiredAt: DateTime.Utc | null = null
  const pages = LogPages.make({
    storage: {
      readLogs: (_access, _id, afterSeq, limit) =>
        Effect.sync(() => {
          reads.push(afterSeq)
          return {
            lines: expiredAt === null ? lines.filter((line) => line.seq > afterSeq).slice(0, limit) : [],
            truncated: false,
            lastSeq: lines.length,
            expiredAt
          }
        })
    },
    render: (message) => (message.type === "line" ? message.text : undefined),
    ...options
  })
  const expire = () => {
    expiredAt = DateTime.makeUnsafe(0)
  }
  return { pages, reads, grow, expire }
}

it.effect("shares one read of a page between followers anywhere in it", () =>
  Effect.gen(function* () {
    const { pages, reads } = arrange(2500)
    const early = yield* pages.reader(buildId, 10)
    const later = yield* pages.reader(buildId, 600)
    const first = yield* early.read(10, 0)
    const second = yield* later.read(600, 0)
    expect(second).toBe(first)
    expect(first.seqs).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1))
    expect(reads).toEqual([0])
    yield* later.read(1200, 0)
    expect(reads).toEqual([0, 1000])
  }).pipe(Effect.scoped)
)

it.effect(
  "keeps a full page past its age while a follower has yet to read it, and drops it once none has",
  () =>
    Effect.gen(function* () {
      const { pages, reads } = arrange(2500, { maxAgeMs: 250 })
      const ahead = yield* pages.reader(buildId, 0)
      const behind = yield* pages.reader(buildId, 0)
      yield* ahead.read(0, 0)
      yield* behind.read(0, 0)
      ahead.reached(1000)
      behind.reached(1000)
      yield* ahead.read(1000, 0)
      ahead.reached(2000)
      expect(reads).toEqual([0, 1000])
      yield* TestClock.adjust("10 seconds")
      yield* behind.read(1000, 0)
      expect(reads).toEqual([0, 1000])
      // Inside the page, a follower has it: it is kept for none now.
      behind.reached(1500)
      yield* TestClock.adjust("1 second")
      yield* behind.read(1000, 0)
      expect(reads).toEqual([0, 1000, 1000])
    }).pipe(Effect.scoped)
)

it.effect("reads the last page of a log again once a follower knows it grew, or once it is old", () =>
  Effect.gen(function* () {
    const { pages, reads, grow } = arrange(1500, { maxAgeMs: 250 })
    const follower = yield* pages.reader(buildId, 1000)
    expect((yield* follower.read(1000, 1500)).seqs).toHaveLength(500)
    grow(100)
    // Within its age, and as far as the follower knows the log to reach: shared.
    yield* follower.read(1200, 1500)
    expect(reads).toEqual([1000])
    expect((yield* follower.read(1200, 1600)).seqs).toHaveLength(600)
    expect(reads).toEqual([1000, 1000])
    grow(10)
    yield* TestClock.adjust("1 second")
    expect((yield* follower.read(1600, 1600)).seqs).toHaveLength(610)
    expect(reads).toEqual([1000, 1000, 1000])
  }).pipe(Effect.scoped)
)

it.effect("past its bound, drops the page the fewest followers still need", () =>
  Effect.gen(function* () {
    // Each page of 1,000 short lines is about 28 kB here: two fit, three do not.
    const { pages, reads } = arrange(5000, { maxBytes: 60_000 })
    const straggler = yield* pages.reader(buildId, 0)
    const pack = yield* Effect.forEach([1, 2, 3], () => pages.reader(buildId, 2000))
    yield* straggler.read(0, 0)
    yield* pack[0]!.read(2000, 0)
    yield* pack[0]!.read(3000, 0)
    expect(reads).toEqual([0, 2000, 3000])
    // Page 2000 is needed by three followers, page 0 by one: page 0 went.
    yield* pack[1]!.read(2000, 0)
    expect(reads).toEqual([0, 2000, 3000])
    yield* straggler.read(0, 0)
    expect(reads).toEqual([0, 2000, 3000, 0])
  }).pipe(Effect.scoped)
)

it.effect(
  "gives a follower that has just come a page younger than its age, so it sees a log expired since",
  () =>
    Effect.gen(function* () {
      const { pages, reads, expire } = arrange(2500, { maxAgeMs: 250 })
      const reading = yield* pages.reader(buildId, 0)
      expect((yield* reading.read(0, 0)).expiredAt).toBeNull()
      yield* TestClock.adjust("10 seconds")
      expire()
      const newcomer = yield* pages.reader(buildId, 0)
      expect((yield* newcomer.read(0, 0)).expiredAt).not.toBeNull()
      expect(reads).toEqual([0, 0])
    }).pipe(Effect.scoped)
)
