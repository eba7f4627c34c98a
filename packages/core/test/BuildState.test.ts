import { describe, expect, it } from "@effect/vitest"
import { Build, BuildState } from "@kiln/core"
import { DateTime, Result, Schema } from "effect"
import fc from "fast-check"
import { queuedBuild } from "./fixtures.ts"

const t = (ms: number) => DateTime.makeUnsafe(1_700_000_000_000 + ms)
const fence = { owner: "engine-a", attempt: 1 }

const run = (events: ReadonlyArray<BuildState.BuildEvent>) =>
  events.reduce<Result.Result<Build.Build, unknown>>(
    (build, event) => Result.flatMap(build, (b) => BuildState.transition(b, event)),
    Result.succeed(queuedBuild())
  )

const claim = (at = 1): BuildState.BuildEvent => ({
  _tag: "Claim",
  at: t(at),
  ...fence,
  leaseExpiresAt: t(at + 30_000)
})

describe("BuildState.transition", () => {
  it("walks the happy path queued → initializing → running → stopped/success", () => {
    const done = Result.getOrThrow(
      run([
        claim(),
        { _tag: "Started", at: t(2), ...fence },
        { _tag: "Succeeded", at: t(3), ...fence, imageTag: "r/web:abc", imageDigest: "sha256:1" }
      ])
    )
    expect(done).toMatchObject({
      phase: "stopped",
      outcome: "success",
      status: "completed",
      owner: "engine-a",
      attempt: 1,
      leaseExpiresAt: null,
      imageTag: "r/web:abc"
    })
    expect(DateTime.toEpochMillis(done.startedAt!)).toBe(DateTime.toEpochMillis(t(1)))
    expect(DateTime.toEpochMillis(done.runningAt!)).toBe(DateTime.toEpochMillis(t(2)))
    expect(DateTime.toEpochMillis(done.completedAt!)).toBe(DateTime.toEpochMillis(t(3)))
    expect(Schema.is(Build.Build)(done)).toBe(true)
  })

  it.each([
    ["queued can not start", [{ _tag: "Started", at: t(1), ...fence }], "LeaseLost"],
    ["running can not be claimed again", [claim(), { ...claim(2), attempt: 2 }], "InvalidTransition"],
    ["a claim must be the next attempt", [{ ...claim(), attempt: 2 }], "InvalidTransition"],
    [
      "started twice",
      [claim(), { _tag: "Started", at: t(2), ...fence }, { _tag: "Started", at: t(3), ...fence }],
      "InvalidTransition"
    ],
    [
      "stopped without a cancel request",
      [claim(), { _tag: "Stopped", at: t(2), ...fence }],
      "InvalidTransition"
    ],
    ["a lease expiring early", [claim(), { _tag: "LeaseExpired", at: t(10) }], "InvalidTransition"],
    ["skipping a claimed build", [claim(), { _tag: "Skip", at: t(2), reason: "x" }], "InvalidTransition"],
    [
      "another owner finishing",
      [claim(), { _tag: "Failed", at: t(2), owner: "engine-b", attempt: 1, error: "x" }],
      "LeaseLost"
    ],
    [
      "a cancel after the stop",
      [
        { _tag: "Cancel", at: t(1), reason: null },
        { _tag: "Cancel", at: t(2), reason: null }
      ],
      "InvalidTransition"
    ]
  ] as ReadonlyArray<[string, ReadonlyArray<BuildState.BuildEvent>, string]>)(
    "rejects %s",
    (_, events, tag) => {
      const result = run(events)
      expect(Result.isFailure(result) && (result.failure as { _tag: string })._tag).toBe(tag)
    }
  )

  it("turns an expired lease into lost, or cancelled when a cancel was pending", () => {
    const lost = Result.getOrThrow(run([claim(), { _tag: "LeaseExpired", at: t(30_001) }]))
    expect(lost).toMatchObject({ outcome: "lost", status: "failed" })
    expect(lost.error).toContain("engine-a")
    const cancelled = Result.getOrThrow(
      run([claim(), { _tag: "Cancel", at: t(5), reason: "user" }, { _tag: "LeaseExpired", at: t(30_001) }])
    )
    expect(cancelled).toMatchObject({ outcome: "cancelled", cancelReason: "user", error: null })
  })

  it("gives back a claimed build that never started: queued again, for the next attempt", () => {
    const released = Result.getOrThrow(run([claim(), { _tag: "Release", at: t(5), ...fence }]))
    expect(released).toMatchObject({
      phase: "queued",
      status: "pending",
      owner: null,
      attempt: 1,
      leaseExpiresAt: null,
      startedAt: null
    })
    expect(Schema.is(Build.Build)(released)).toBe(true)
    const again = Result.getOrThrow(
      BuildState.transition(released, {
        _tag: "Claim",
        at: t(6),
        owner: "engine-a",
        attempt: 2,
        leaseExpiresAt: t(30_006)
      })
    )
    expect(again).toMatchObject({ phase: "initializing", attempt: 2 })
    // The old claim's fence holds nothing now.
    const late = BuildState.transition(again, { _tag: "Started", at: t(7), ...fence })
    expect(Result.isFailure(late) && late.failure._tag).toBe("LeaseLost")
    // Asked to cancel before it started: it stops instead.
    const cancelled = Result.getOrThrow(
      run([claim(), { _tag: "Cancel", at: t(3), reason: "user" }, { _tag: "Release", at: t(5), ...fence }])
    )
    expect(cancelled).toMatchObject({ phase: "stopped", outcome: "cancelled", runningAt: null })
    // Only an unstarted build, and only by its owner.
    const started = run([
      claim(),
      { _tag: "Started", at: t(2), ...fence },
      { _tag: "Release", at: t(3), ...fence }
    ])
    expect(Result.isFailure(started) && (started.failure as { _tag: string })._tag).toBe("InvalidTransition")
    const stranger = run([claim(), { _tag: "Release", at: t(3), owner: "engine-b", attempt: 1 }])
    expect(Result.isFailure(stranger) && (stranger.failure as { _tag: string })._tag).toBe("LeaseLost")
  })

  it("keeps the first cancel request", () => {
    const build = Result.getOrThrow(
      run([
        claim(),
        { _tag: "Cancel", at: t(5), reason: "first" },
        { _tag: "Cancel", at: t(6), reason: "second" }
      ])
    )
    expect(build).toMatchObject({ phase: "initializing", cancelReason: "first" })
    expect(DateTime.toEpochMillis(build.cancelRequestedAt!)).toBe(DateTime.toEpochMillis(t(5)))
  })
})

// ---------------------------------------------------------------------------------------------------------
// Properties over random event sequences
// ---------------------------------------------------------------------------------------------------------

const owners = ["engine-a", "engine-b"]
const eventArbitrary = (at: number): fc.Arbitrary<BuildState.BuildEvent> => {
  const fenceArb = fc.record({ owner: fc.constantFrom(...owners), attempt: fc.integer({ min: 0, max: 2 }) })
  return fc.oneof(
    fenceArb.map((f) => ({ _tag: "Claim" as const, at: t(at), ...f, leaseExpiresAt: t(at + 1_000) })),
    fenceArb.map((f) => ({ _tag: "Started" as const, at: t(at), ...f })),
    fenceArb.map((f) => ({ _tag: "Release" as const, at: t(at), ...f })),
    fenceArb.map((f) => ({
      _tag: "Succeeded" as const,
      at: t(at),
      ...f,
      imageTag: "img",
      imageDigest: null
    })),
    fenceArb.map((f) => ({ _tag: "Failed" as const, at: t(at), ...f, error: "boom" })),
    fenceArb.map((f) => ({ _tag: "TimedOut" as const, at: t(at), ...f, error: "timeout" })),
    fenceArb.map((f) => ({ _tag: "Stopped" as const, at: t(at), ...f })),
    fc.option(fc.string(), { nil: null }).map((reason) => ({ _tag: "Cancel" as const, at: t(at), reason })),
    fc.string().map((reason) => ({ _tag: "Skip" as const, at: t(at), reason })),
    fc.constant({ _tag: "LeaseExpired" as const, at: t(at) })
  )
}

/** Sequences of events at non-decreasing times, with gaps long enough for leases to expire. */
const sequenceArbitrary = fc
  .array(fc.integer({ min: 0, max: 800 }), { minLength: 1, maxLength: 40 })
  .chain((gaps) => {
    const times = gaps.map((_, i) => gaps.slice(0, i + 1).reduce((sum, gap) => sum + gap, 0))
    return fc.tuple(...times.map(eventArbitrary))
  })

const phaseOrder: Record<BuildState.Phase, number> = { queued: 0, initializing: 1, running: 2, stopped: 3 }
const allowedSteps = new Set([
  "queued>initializing",
  "queued>stopped",
  "initializing>running",
  "initializing>stopped",
  "running>stopped"
])

const isValidBuild = Schema.is(Build.Build)
const isStatus = Schema.is(BuildState.Status)

/** Applies each event, keeping the build as it was when an event is rejected, and records every state. */
const trace = (events: ReadonlyArray<BuildState.BuildEvent>) => {
  const states: Array<{
    before: Build.Build
    event: BuildState.BuildEvent
    after: Build.Build
    accepted: boolean
  }> = []
  let build = queuedBuild()
  for (const event of events) {
    const result = BuildState.transition(build, event)
    const after = Result.isSuccess(result) ? result.success : build
    states.push({ before: build, event, after, accepted: Result.isSuccess(result) })
    build = after
  }
  return states
}

describe("BuildState properties", () => {
  it("never changes a stopped build", () =>
    fc.assert(
      fc.property(sequenceArbitrary, (events) => {
        for (const step of trace(events)) {
          if (step.before.phase === "stopped") {
            expect(step.accepted).toBe(false)
            expect(step.after).toBe(step.before)
          }
        }
      }),
      { numRuns: 2_000 }
    ))

  it("never skips a phase, and goes back only when its owner gives back an unstarted claim", () =>
    fc.assert(
      fc.property(sequenceArbitrary, (events) => {
        for (const { before, event, after } of trace(events)) {
          if (before.phase === after.phase) continue
          if (event._tag === "Release" && after.phase === "queued") {
            expect(before.phase).toBe("initializing")
            expect(after.attempt).toBe(before.attempt)
            continue
          }
          expect(phaseOrder[after.phase]).toBeGreaterThan(phaseOrder[before.phase])
          expect(allowedSteps.has(`${before.phase}>${after.phase}`)).toBe(true)
        }
      }),
      { numRuns: 2_000 }
    ))

  it("never loses or moves cancelRequestedAt once set", () =>
    fc.assert(
      fc.property(sequenceArbitrary, (events) => {
        for (const { before, after } of trace(events)) {
          if (before.cancelRequestedAt !== null) {
            expect(after.cancelRequestedAt).not.toBeNull()
            expect(DateTime.toEpochMillis(after.cancelRequestedAt!)).toBe(
              DateTime.toEpochMillis(before.cancelRequestedAt)
            )
          }
        }
      }),
      { numRuns: 2_000 }
    ))

  it("reaches only builds that satisfy the schema, and every reachable pair has a canonical status", () => {
    const reached = new Set<string>()
    fc.assert(
      fc.property(sequenceArbitrary, (events) => {
        for (const { after } of trace(events)) {
          expect(isValidBuild(after)).toBe(true)
          const state = BuildState.stateOf(after)
          reached.add(`${state.phase}/${state.outcome}`)
          expect(isStatus(BuildState.toStatus(state))).toBe(true)
        }
      }),
      { numRuns: 2_000 }
    )
    // The generator is strong enough to reach every pair the machine allows.
    expect([...reached].sort()).toEqual(
      [
        "initializing/null",
        "queued/null",
        "running/null",
        "stopped/cancelled",
        "stopped/failure",
        "stopped/lost",
        "stopped/skipped",
        "stopped/success",
        "stopped/timed_out"
      ].sort()
    )
  })

  it("changes a build only through an owner holding its fence, except cancel, skip and expiry", () =>
    fc.assert(
      fc.property(sequenceArbitrary, (events) => {
        for (const { before, event, accepted } of trace(events)) {
          if (!accepted || !("owner" in event) || event._tag === "Claim") continue
          expect(event.owner).toBe(before.owner)
          expect(event.attempt).toBe(before.attempt)
        }
      }),
      { numRuns: 1_000 }
    ))
})

describe("canonical status", () => {
  it("maps every pair as documented", () => {
    const pairs: ReadonlyArray<BuildState.State> = [
      { phase: "queued", outcome: null },
      { phase: "initializing", outcome: null },
      { phase: "running", outcome: null },
      ...BuildState.Outcome.literals.map((outcome) => ({ phase: "stopped" as const, outcome }))
    ]
    expect(pairs.map((state) => [`${state.phase}/${state.outcome}`, BuildState.toStatus(state)])).toEqual([
      ["queued/null", "pending"],
      ["initializing/null", "running"],
      ["running/null", "running"],
      ["stopped/success", "completed"],
      ["stopped/failure", "failed"],
      ["stopped/cancelled", "cancelled"],
      ["stopped/timed_out", "failed"],
      ["stopped/lost", "failed"],
      ["stopped/skipped", "skipped"]
    ])
  })
})

describe("BuildState.boundText", () => {
  const bytes = (text: string) => new TextEncoder().encode(text).length

  it("keeps a text within maxTextBytes whole, and cuts a longer one at a character with an ellipsis", () => {
    const fits = "é".repeat(BuildState.maxTextBytes / 2)
    expect(BuildState.boundText(fits)).toBe(fits)
    const over = `${fits}e`
    const cut = BuildState.boundText(over)
    expect(bytes(cut)).toBeLessThanOrEqual(BuildState.maxTextBytes)
    expect(cut).toBe(`${"é".repeat(Math.floor((BuildState.maxTextBytes - 3) / 2))}…`)
  })

  it("never splits a character of two UTF-16 units", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", minLength: 300, maxLength: 2000 }), (text) => {
        const cut = BuildState.boundText(text)
        expect(bytes(cut)).toBeLessThanOrEqual(BuildState.maxTextBytes)
        expect(cut.isWellFormed()).toBe(true)
        expect(text.startsWith(cut.endsWith("…") && cut !== text ? cut.slice(0, -1) : cut)).toBe(true)
      })
    )
  })
})
