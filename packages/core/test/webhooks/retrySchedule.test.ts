import { describe, expect, it } from "@effect/vitest"
import { Duration } from "effect"
import fc from "fast-check"
import { attempts, jitter, nextDelay, type RetrySchedule } from "../../src/internal/webhooks/retrySchedule.ts"

const hour = 3_600_000
const fixed = (value: number) => () => value
/** The largest number `Math.random` can return. */
const almostOne = 1 - 2 ** -53

/** Every delay of a delivery that fails each attempt, in milliseconds. */
const delays = (random: () => number, schedule?: RetrySchedule) => {
  const out: Array<number> = []
  for (let attempt = 1; ; attempt++) {
    const delay = nextDelay(attempt, random, schedule)
    if (delay === undefined) return out
    out.push(Duration.toMillis(delay))
  }
}
const sum = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0)

describe("retrySchedule", () => {
  it("by default gives 12 attempts over a nominal 21 h 52 m 35 s, from 5 s to 8 h apart", () => {
    const nominal = delays(fixed(0.5))
    expect(attempts()).toBe(12)
    expect(nominal).toHaveLength(11)
    expect(nominal[0]).toBe(5_000)
    expect(nominal.at(-1)).toBe(8 * hour)
    expect(sum(nominal)).toBe(((21 * 60 + 52) * 60 + 35) * 1000)
  })

  it("keeps every delay within ±20 % of the nominal one, so the span stays about a day", () => {
    const nominal = delays(fixed(0.5))
    // 17 h 30 m 4 s and 26 h 15 m 6 s.
    const [low, high] = [17.5 * hour + 4_000, 26.25 * hour + 6_000]
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: almostOne, noNaN: true }), { minLength: 11, maxLength: 11 }),
        (draws) => {
          let i = 0
          const jittered = delays(() => draws[i++]!)
          jittered.forEach((delay, k) => {
            expect(delay).toBeGreaterThanOrEqual(Math.floor(nominal[k]! * (1 - jitter)))
            expect(delay).toBeLessThanOrEqual(Math.ceil(nominal[k]! * (1 + jitter)))
          })
          const span = sum(jittered)
          expect(span).toBeGreaterThanOrEqual(17.5 * hour)
          expect(span).toBeLessThanOrEqual(26.25 * hour)
        }
      )
    )
    expect(sum(delays(fixed(0)))).toBe(low)
    expect(sum(delays(fixed(almostOne)))).toBe(high)
  })

  it("never waits less after a later attempt than the bounds of an earlier one allow", () => {
    const lowest = delays(fixed(0))
    const highest = delays(fixed(almostOne))
    for (let k = 1; k < lowest.length; k++) {
      expect(lowest[k]).toBeGreaterThan(lowest[k - 1]!)
      expect(highest[k]).toBeGreaterThan(highest[k - 1]!)
    }
  })

  it("is exhausted after the last attempt, and has no delay before the first", () => {
    expect(nextDelay(11, fixed(0.5))).toBeDefined()
    expect(nextDelay(12, fixed(0.5))).toBeUndefined()
    expect(nextDelay(100, fixed(0.5))).toBeUndefined()
    expect(nextDelay(0, fixed(0.5))).toBeUndefined()
    expect(nextDelay(1.5, fixed(0.5))).toBeUndefined()
  })

  it("doubles from base up to max over the configured attempts", () => {
    const schedule: RetrySchedule = { attempts: 6, base: "1 second", max: "10 seconds" }
    expect(attempts(schedule)).toBe(6)
    expect(delays(fixed(0.5), schedule)).toEqual([1_000, 2_000, 4_000, 8_000, 10_000])
    expect(nextDelay(6, fixed(0.5), schedule)).toBeUndefined()
  })

  it("follows an explicit list", () => {
    const schedule: RetrySchedule = { delays: ["1 minute", 90_000] }
    expect(attempts(schedule)).toBe(3)
    expect(delays(fixed(0.5), schedule)).toEqual([60_000, 90_000])
    expect(delays(fixed(0), schedule)).toEqual([48_000, 72_000])
  })
})
