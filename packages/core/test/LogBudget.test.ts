import { describe, expect, it } from "@effect/vitest"
import { Id, LogLine } from "@kiln/core"
import { LogBudget } from "@kiln/core/adapter"
import { DateTime } from "effect"
import fc from "fast-check"

const buildId = Id.fromUuid("bld", "0190b3a0-0000-7000-8000-000000000001")!
const at = DateTime.makeUnsafe(0)
const line = (seq: number, text: string): LogLine.LogLine => ({
  seq,
  ts: at,
  stream: "stdout",
  step: null,
  text
})

describe("LogLine.split", () => {
  it("keeps short texts whole", () => {
    expect(LogLine.split("hello")).toEqual(["hello"])
    expect(LogLine.split("")).toEqual([""])
  })

  it("splits into pieces within the byte limit that join back to the text, never inside a code point", () =>
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme", maxLength: 400 }),
        fc.integer({ min: 4, max: 64 }),
        (text, max) => {
          const pieces = LogLine.split(text, max)
          expect(pieces.join("")).toBe(text)
          for (const piece of pieces) {
            expect(LogLine.byteLength(piece)).toBeLessThanOrEqual(max)
            expect(piece.length === 0 || !/^[\udc00-\udfff]/.test(piece)).toBe(true)
          }
        }
      )
    ))

  it("splits a line over 64 KiB", () => {
    const pieces = LogLine.split("x".repeat(64 * 1024 * 2 + 5))
    expect(pieces.map((p) => p.length)).toEqual([65536, 65536, 5])
  })

  it("counts UTF-8 bytes", () => {
    expect(LogLine.byteLength("abc")).toBe(3)
    expect(LogLine.byteLength("€")).toBe(3)
    expect(LogLine.byteLength("😀")).toBe(4)
  })
})

describe("LogBudget", () => {
  const budget = { headBytes: 10, tailBytes: 10 }

  it("fills the head, then the tail, and asks for a trim past the tail budget", () => {
    const plan = LogBudget.planAppend(
      buildId,
      LogBudget.emptyStats,
      [line(1, "aaaa"), line(2, "bbbb"), line(3, "cccc"), line(4, "dddddddd")],
      budget
    )
    if (plan instanceof LogBudget.LogSequenceGap) throw plan
    expect(plan.stats).toMatchObject({ lastSeq: 4, headBytes: 8, headLastSeq: 2, tailBytes: 12 })
    expect(plan.excessBytes).toBe(2)
    expect(LogBudget.trimFromSeq(plan.stats)).toBe(3)
    const trim = LogBudget.planTrim(
      plan.stats,
      plan.excessBytes,
      [
        { seq: 3, bytes: 4 },
        { seq: 4, bytes: 8 }
      ],
      at
    )
    expect(trim).toMatchObject({
      deleteThroughSeq: 3,
      stats: { tailBytes: 8, droppedLines: 1, droppedBytes: 4 }
    })
  })

  it("skips lines already stored and refuses a gap", () => {
    const stats = { ...LogBudget.emptyStats, lastSeq: 3, headBytes: 3 }
    const plan = LogBudget.planAppend(buildId, stats, [line(2, "x"), line(3, "x"), line(4, "y")], budget)
    if (plan instanceof LogBudget.LogSequenceGap) throw plan
    expect(plan.fresh.map((l) => l.seq)).toEqual([4])
    const gap = LogBudget.planAppend(buildId, stats, [line(5, "z")], budget)
    expect(gap).toBeInstanceOf(LogBudget.LogSequenceGap)
    expect((gap as LogBudget.LogSequenceGap).message).toContain("seq 4")
  })

  it("consumes the oldest tail lines only as far as needed", () => {
    let pulled = 0
    const rows = function* () {
      for (let seq = 10; seq < 1_000_000; seq++) {
        pulled++
        yield { seq, bytes: 5 }
      }
    }
    const stats = { ...LogBudget.emptyStats, lastSeq: 1_000_000, headLastSeq: 9, tailBytes: 100 }
    const trim = LogBudget.planTrim(stats, 12, rows(), at)
    expect(trim?.deleteThroughSeq).toBe(12)
    expect(pulled).toBe(3)
    expect(LogBudget.planTrim(stats, 0, rows(), at)).toBeUndefined()
  })

  it("holds the budget and keeps seq increasing for any sequence of appends", () =>
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.string({ maxLength: 30 }), { maxLength: 20 }), { maxLength: 30 }),
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 0, max: 200 }),
        (batches, headBytes, tailBytes) => {
          const limits = { headBytes, tailBytes }
          let stats = LogBudget.emptyStats
          let stored: Array<LogLine.LogLine> = []
          let seq = 0
          for (const batch of batches) {
            const plan = LogBudget.planAppend(
              buildId,
              stats,
              batch.map((text) => line(++seq, text)),
              limits
            )
            if (plan instanceof LogBudget.LogSequenceGap) throw plan
            stored.push(...plan.fresh)
            stats = plan.stats
            const from = LogBudget.trimFromSeq(stats)
            const tail = stored
              .filter((l) => l.seq >= from)
              .map((l) => ({ seq: l.seq, bytes: LogLine.byteLength(l.text) }))
            const trim = LogBudget.planTrim(stats, plan.excessBytes, tail, at)
            if (trim !== undefined) {
              stored = stored.filter((l) => l.seq < from || l.seq > trim.deleteThroughSeq)
              stats = trim.stats
            }
          }
          const bytes = (lines: ReadonlyArray<LogLine.LogLine>) =>
            lines.reduce((n, l) => n + LogLine.byteLength(l.text), 0)
          const head = stored.filter((l) => stats.headLastSeq === null || l.seq <= stats.headLastSeq)
          expect(bytes(head)).toBe(stats.headBytes)
          expect(stats.headBytes).toBeLessThanOrEqual(headBytes)
          expect(bytes(stored) - bytes(head)).toBe(stats.tailBytes)
          expect(stats.tailBytes).toBeLessThanOrEqual(tailBytes)
          expect(stats.droppedLines + stored.length).toBe(seq)
          const page = LogBudget.page(stored, stats, 0, 10_000)
          const seqs = page.map((l) => l.seq)
          expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
          expect(new Set(seqs).size).toBe(seqs.length)
          expect(page.some((l) => l.stream === "system")).toBe(stats.droppedLines > 0)
        }
      ),
      { numRuns: 500 }
    ))
})
