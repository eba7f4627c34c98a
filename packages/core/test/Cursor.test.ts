import { describe, expect, it } from "@effect/vitest"
import { Access, Cursor, Fields, Id, OrderBy, Query } from "@kiln/core"
import { DateTime, Effect, Result } from "effect"

const builds = Fields.builds
const apps = Fields.apps
const ws = (n: number) => Id.fromUuid("wsp", `0190b3a0-0000-7000-8000-00000000000${n}`)!
const order = OrderBy.complete(OrderBy.defaultOrder)
const byName = Result.getOrThrow(OrderBy.parse(builds, '[{"createdBy":"asc"}]'))
const scope = Access.workspaces([ws(1)])

const reason = (effect: Effect.Effect<unknown, Cursor.InvalidCursor>) =>
  Effect.map(Effect.flip(effect), (error) => error.message)

describe("Cursor", () => {
  const keyed = Effect.provide(Cursor.layer("a-secret-of-at-least-thirty-two-bytes!"))

  it.effect("round-trips a position as opaque base64url", () =>
    Effect.gen(function* () {
      const cursor = yield* Cursor.encode(builds, order, scope, [1700000000000, "bld_x"])
      expect(cursor).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/)
      expect(cursor).not.toContain("bld_x")
      expect(yield* Cursor.decode(builds, order, scope, "after", cursor)).toEqual({
        direction: "after",
        values: [1700000000000, "bld_x"]
      })
      const nulls = yield* Cursor.encode(builds, byName, scope, [null, "bld_y"])
      expect((yield* Cursor.decode(builds, byName, scope, "before", nulls)).values).toEqual([null, "bld_y"])
    }).pipe(keyed)
  )

  it.effect("refuses a tampered, truncated, foreign, or mismatched cursor", () =>
    Effect.gen(function* () {
      const cursor = yield* Cursor.encode(builds, order, scope, [1700000000000, "bld_x"])
      const [body, tag] = cursor.split(".") as [string, string]
      const flipped = `${body.slice(0, 5)}${body[5] === "A" ? "B" : "A"}${body.slice(6)}.${tag}`
      expect(yield* reason(Cursor.decode(builds, order, scope, "after", flipped))).toBe(
        "after: the cursor was altered, or issued to another caller or by another deployment"
      )
      expect(yield* reason(Cursor.decode(builds, order, scope, "after", cursor.slice(0, -3)))).toBe(
        "after: the cursor was altered, or issued to another caller or by another deployment"
      )
      expect(yield* reason(Cursor.decode(builds, order, scope, "after", body))).toBe(
        "after: not a cursor this API issued"
      )
      expect(yield* reason(Cursor.decode(builds, order, scope, "after", `${cursor}.x`))).toBe(
        "after: not a cursor this API issued"
      )
      expect(yield* reason(Cursor.decode(builds, byName, scope, "after", cursor))).toBe(
        "after: the cursor was issued for another orderBy"
      )
      expect(yield* reason(Cursor.decode(builds, order, Access.workspaces([ws(2)]), "before", cursor))).toBe(
        "before: the cursor was altered, or issued to another caller or by another deployment"
      )
      expect(yield* reason(Cursor.decode(builds, order, Access.all, "after", cursor))).toBe(
        "after: the cursor was altered, or issued to another caller or by another deployment"
      )
      expect(yield* reason(Cursor.decode(apps, order, scope, "after", cursor))).toBe(
        "after: the cursor is for builds, not apps"
      )
      const foreign = yield* Cursor.encode(builds, order, scope, [1, "bld_x"]).pipe(
        Effect.provide(Cursor.layer("another-secret-of-at-least-32-bytes!!"))
      )
      expect(yield* reason(Cursor.decode(builds, order, scope, "after", foreign))).toBe(
        "after: the cursor was altered, or issued to another caller or by another deployment"
      )
    }).pipe(keyed)
  )

  it.effect("checks values against the order's fields even under a valid tag", () =>
    Effect.gen(function* () {
      const wrongTypes = yield* Cursor.encode(builds, order, scope, ["yesterday", "bld_x"])
      expect(yield* reason(Cursor.decode(builds, order, scope, "after", wrongTypes))).toBe(
        "after: not a cursor this API issued"
      )
      const nullId = yield* Cursor.encode(builds, order, scope, [1, null])
      expect(yield* reason(Cursor.decode(builds, order, scope, "after", nullId))).toBe(
        "after: not a cursor this API issued"
      )
    }).pipe(keyed)
  )

  it.effect("signs page cursors that the next request accepts", () =>
    Effect.gen(function* () {
      const query = Query.first(2)
      const row = { createdAt: DateTime.makeUnsafe(0), id: "bld_x" }
      const page = yield* Query.toPage(Fields.builds, Access.all, query, {
        rows: [row as never],
        total: 5,
        hasNextPage: true,
        hasPreviousPage: false
      })
      expect(page.pageInfo).toMatchObject({ total: 5, hasNextPage: true, hasPreviousPage: false })
      expect(page.pageInfo.startCursor).toBe(page.pageInfo.endCursor)
      const next = yield* Query.fromParams(builds, Access.all, { after: page.pageInfo.endCursor! })
      expect(next.cursor).toEqual({ direction: "after", values: [0, "bld_x"] })
      const empty = yield* Query.toPage(Fields.builds, Access.all, query, {
        rows: [],
        total: 0,
        hasNextPage: false,
        hasPreviousPage: false
      })
      expect(empty.pageInfo).toMatchObject({ startCursor: null, endCursor: null })
    }).pipe(keyed)
  )
})
