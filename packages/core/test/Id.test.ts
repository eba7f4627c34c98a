import { describe, expect, it } from "@effect/vitest"
import { Id } from "@kiln/core"
import { Effect, Schema } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"

const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe("Id", () => {
  it.effect("generates prefixed ids that decode with their schema and encode a UUIDv7", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(1_732_000_000_123)
      const id = yield* Id.generate("bld")
      expect(id).toMatch(/^bld_[0-7][0-9a-hjkmnp-tv-z]{25}$/)
      expect(Schema.is(Id.BuildId)(id)).toBe(true)
      expect(Schema.is(Id.AppId)(id)).toBe(false)
      expect(Id.toUuid(id)).toMatch(uuidV7)
      expect(Id.timestampOf(id)).toBe(1_732_000_000_123)
      expect(Id.fromUuid("bld", Id.toUuid(id))).toBe(id)
    })
  )

  it("converts any UUID to an id and back without loss", () =>
    fc.assert(
      fc.property(fc.uuid(), (uuid) => {
        const id = Id.fromUuid("evt", uuid)!
        expect(Schema.is(Id.SourceEventId)(id)).toBe(true)
        expect(Id.toUuid(id)).toBe(uuid.toLowerCase())
      })
    ))

  it("sorts ids of one generator in creation order, within a millisecond and across a clock step back", () => {
    const generator = Id.makeGenerator()
    const times = [5, 5, 5, 6, 6, 4, 4, 7, 7, 7]
    const values = times.map((ms) => generator.next(ms))
    const sorted = [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    expect(sorted).toEqual(values)
    expect(new Set(values).size).toBe(values.length)
  })

  it("keeps the id order equal to the UUID order", () =>
    fc.assert(
      fc.property(fc.uuid(), fc.uuid(), (a, b) => {
        const idA = Id.fromUuid("wsp", a)!
        const idB = Id.fromUuid("wsp", b)!
        expect(idA < idB).toBe(a.toLowerCase() < b.toLowerCase())
      })
    ))

  it("rejects text that is not a UUID, and ids with the wrong prefix or alphabet", () => {
    expect(Id.fromUuid("bld", "not-a-uuid")).toBeUndefined()
    expect(Schema.is(Id.BuildId)("bld_8zzzzzzzzzzzzzzzzzzzzzzzzz")).toBe(false)
    expect(Schema.is(Id.BuildId)("bld_01jd00000000000000000000ul")).toBe(false)
    expect(Schema.is(Id.BuildId)("wsp_01jd0000000000000000000000")).toBe(false)
  })
})
