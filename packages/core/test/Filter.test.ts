import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Access, Fields, Filter, OrderBy, Query } from "@kiln/core"
import { Effect, Result } from "effect"

const builds = Fields.builds

const rejection = (text: string) => {
  const result = Filter.parse(builds, text)
  return Result.isFailure(result) ? result.failure.message : `accepted: ${JSON.stringify(result.success)}`
}

const nest = (levels: number): object =>
  levels === 0 ? { status: { eq: "failed" } } : { not: nest(levels - 1) }

describe("Filter.parse", () => {
  it("parses the documented example into one normalized AST", () => {
    const text = JSON.stringify({
      and: [{ status: { in: ["failed", "cancelled"] } }, { createdAt: { gte: "2026-01-01T00:00:00Z" } }],
      or: [{ error: { isNull: false } }, { trigger: { eq: "auto" } }],
      not: { createdBy: { startsWith: "bot:" } },
      app: { handle: { eq: "web" } },
      appVersion: { commitSha: { startsWith: "abc1" } },
      steps: { some: { status: { eq: "failed" } } }
    })
    expect(Result.getOrThrow(Filter.parse(builds, text))).toEqual({
      _tag: "And",
      filters: [
        {
          _tag: "And",
          filters: [
            { _tag: "In", field: "status", values: ["failed", "cancelled"], negate: false },
            { _tag: "Compare", field: "createdAt", op: "gte", value: 1767225600000 }
          ]
        },
        {
          _tag: "Or",
          filters: [
            { _tag: "IsNull", field: "error", isNull: false },
            { _tag: "Compare", field: "trigger", op: "eq", value: "auto" }
          ]
        },
        { _tag: "Not", filter: { _tag: "Compare", field: "createdBy", op: "startsWith", value: "bot:" } },
        {
          _tag: "Related",
          relation: "app",
          quantifier: "one",
          filter: { _tag: "Compare", field: "handle", op: "eq", value: "web" }
        },
        {
          _tag: "Related",
          relation: "appVersion",
          quantifier: "one",
          filter: { _tag: "Compare", field: "commitSha", op: "startsWith", value: "abc1" }
        },
        {
          _tag: "Related",
          relation: "steps",
          quantifier: "some",
          filter: { _tag: "Compare", field: "status", op: "eq", value: "failed" }
        }
      ]
    })
  })

  it.each([
    [
      '{"or":[{},{"status":{"in":["bogus"]}}]}',
      "filter.or[1].status.in[0]: expected one of pending, running, completed, failed, cancelled, skipped"
    ],
    ['{"nope":{"eq":1}}', "filter.nope: not a filterable field of builds; use one of id, workspaceId"],
    ['{"__proto__":{"eq":1}}', "filter.__proto__: not a filterable field of builds"],
    ['{"constructor":{"eq":1}}', "filter.constructor: not a filterable field of builds"],
    ['{"a b\\"c":{"eq":1}}', 'filter["a b\\"c"]: not a filterable field'],
    [
      '{"status":{"lt":"failed"}}',
      "filter.status.lt: not an operator of enum fields; use one of eq, neq, in, notIn"
    ],
    ['{"status":"failed"}', "filter.status: expected an object of operators (eq, neq, in, notIn)"],
    ['{"status":{}}', "filter.status: expected at least one operator"],
    ['{"sequenceNumber":{"eq":1e309}}', "filter.sequenceNumber.eq: expected a finite number"],
    ['{"sequenceNumber":{"eq":"1"}}', "filter.sequenceNumber.eq: expected number"],
    ['{"createdAt":{"gte":"yesterday"}}', "filter.createdAt.gte: expected an ISO 8601 timestamp"],
    ['{"createdAt":{"gte":"2026-02-30T00:00:00Z"}}', "filter.createdAt.gte: expected an ISO 8601 timestamp"],
    [
      '{"createdBy":{"eq":"a\\u0000"}}',
      "filter.createdBy.eq: expected a string of at most 1 KiB, without NUL"
    ],
    [
      '{"createdBy":{"eq":"\\ud800"}}',
      "filter.createdBy.eq: expected a string of at most 1 KiB, without NUL"
    ],
    ['{"error":{"isNull":"yes"}}', "filter.error.isNull: expected boolean"],
    ['{"steps":{"any":{}}}', "filter.steps.any: expected some, every or none"],
    ['{"steps":{}}', "filter.steps: expected an object with some, every or none"],
    ['{"and":{"status":{"eq":"failed"}}}', "filter.and: expected an array of filters"],
    ['{"or":[1]}', "filter.or[0]: expected a filter object"],
    ["[1]", "filter: expected a filter object"],
    ["null", "filter: expected a filter object"],
    ["nope", "filter: not valid JSON"]
  ])("rejects %s naming the path", (text, message) => {
    expect(rejection(text)).toContain(message)
  })

  it("holds every cap of DESIGN.md §4", () => {
    expect(rejection(JSON.stringify(nest(5)))).toMatch(/^accepted/)
    expect(rejection(JSON.stringify(nest(6)))).toBe(
      "filter.not.not.not.not.not.not: nested deeper than 6 levels"
    )
    expect(rejection("[".repeat(4000) + "]".repeat(4000))).toBe("filter: nested deeper than 6 levels")
    const predicates = { and: Array.from({ length: 65 }, (_, i) => ({ sequenceNumber: { eq: i } })) }
    expect(rejection(JSON.stringify(predicates))).toBe("filter.and[64]: more than 64 predicates")
    expect(rejection(JSON.stringify({ and: predicates.and.slice(0, 64) }))).toMatch(/^accepted/)
    const values = (n: number) =>
      JSON.stringify({ sequenceNumber: { in: Array.from({ length: n }, (_, i) => i) } })
    expect(rejection(values(100))).toMatch(/^accepted/)
    expect(rejection(values(101))).toBe(
      "filter.sequenceNumber.in: expected a value with a length of at most 100"
    )
    expect(rejection(JSON.stringify({ createdBy: { eq: "x".repeat(1024) } }))).toMatch(/^accepted/)
    expect(rejection(JSON.stringify({ createdBy: { eq: "x".repeat(1025) } }))).toContain("at most 1 KiB")
    expect(rejection(JSON.stringify({ createdBy: { eq: "€".repeat(342) } }))).toContain("at most 1 KiB")
    expect(
      rejection(
        JSON.stringify({
          createdBy: {
            in: [
              "x".repeat(1000),
              "y".repeat(1000),
              "z".repeat(1000),
              "w".repeat(1000),
              "v".repeat(1000),
              "u".repeat(1000),
              "t".repeat(1000),
              "s".repeat(1000),
              "r".repeat(1000)
            ]
          }
        })
      )
    ).toBe("filter: longer than 8 KiB")
  })
})

describe("OrderBy.parse", () => {
  const order = (text: string) => {
    const result = OrderBy.parse(builds, text)
    return Result.isFailure(result) ? result.failure.message : OrderBy.signature(result.success)
  }

  it("normalizes directions, puts plain nulls where documented, and ends with id", () => {
    expect(order('[{"completedAt":"desc_nulls_last"},{"sequenceNumber":"asc"}]')).toBe(
      "completedAt:dl,sequenceNumber:al,id:al"
    )
    expect(order('[{"error":"asc"}]')).toBe("error:al,id:al")
    expect(order('[{"error":"desc"}]')).toBe("error:df,id:df")
    expect(order('[{"error":"asc_nulls_first"},{"id":"desc"}]')).toBe("error:af,id:df")
    expect(OrderBy.signature(OrderBy.complete(OrderBy.defaultOrder))).toBe("createdAt:df,id:df")
  })

  it.each([
    ['{"createdAt":"desc"}', "orderBy: expected an array"],
    ["[]", "orderBy: expected at least one key"],
    ['[{"a":"asc"},{"b":"asc"},{"c":"asc"},{"d":"asc"},{"e":"asc"}]', "orderBy: at most 4 keys"],
    ['[{"createdAt":"desc","id":"asc"}]', "orderBy[0]: expected an object with one field"],
    ['[{"steps":"asc"}]', "orderBy[0].steps: not a sortable field of builds"],
    ['[{"createdAt":"DESC"}]', "orderBy[0].createdAt: expected one of asc, desc, asc_nulls_first"],
    ['[{"createdAt":"desc; DROP TABLE builds"}]', "orderBy[0].createdAt: expected one of asc, desc"],
    ['[{"createdAt":"desc"},{"createdAt":"asc"}]', "orderBy[1].createdAt: the field is already ordered on"],
    ["{", "orderBy: not valid JSON"]
  ])("rejects %s", (text, message) => {
    expect(order(text)).toContain(message)
  })
})

describe("Query.fromParams", () => {
  const parse = (params: Query.Params) =>
    Query.fromParams(builds, Access.all, params).pipe(
      Effect.map((query) => query),
      Effect.flip,
      Effect.map((error) => error.message)
    )

  it.effect("defaults to 100 newest first, and ANDs shorthands, ids and the filter", () =>
    Effect.gen(function* () {
      const query = yield* Query.fromParams(builds, Access.all, {
        status: "failed",
        app_id: "app_x",
        ids: "bld_a,bld_b",
        filter: '{"createdBy":{"eq":"ada"}}'
      })
      expect(query.limit).toBe(100)
      expect(OrderBy.signature(query.orderBy)).toBe("createdAt:df,id:df")
      expect(query.filter).toEqual({
        _tag: "And",
        filters: [
          { _tag: "Compare", field: "entityId", op: "eq", value: "app_x" },
          { _tag: "Compare", field: "status", op: "eq", value: "failed" },
          { _tag: "In", field: "id", values: ["bld_a", "bld_b"], negate: false },
          { _tag: "Compare", field: "createdBy", op: "eq", value: "ada" }
        ]
      })
    })
  )

  it.effect("types a query by the fields of the table it was parsed against", () =>
    Effect.gen(function* () {
      const overBuilds = yield* Query.fromParams(builds, Access.all, { orderBy: '[{"phase":"asc"}]' })
      const overTriggers = yield* Query.fromParams(Fields.triggers, Access.all, {})
      expectTypeOf(overBuilds).toEqualTypeOf<Query.ListQuery<Fields.BuildField>>()
      expectTypeOf(overTriggers).not.toExtend<Query.ListQuery<Fields.BuildField>>()
      // The first page names only the fields every listed table has.
      expectTypeOf(Query.first()).toExtend<Query.ListQuery<Fields.TokenField>>()
      const misspelt = { _tag: "IsNull", field: "phaze", isNull: true } as const
      expectTypeOf(misspelt).not.toExtend<Filter.Filter<Fields.BuildField>>()
      expect(overBuilds.orderBy.map((key) => key.field)).toEqual(["phase", "id"])
    })
  )

  it.effect("names the parameter it refuses", () =>
    Effect.gen(function* () {
      expect(yield* parse({ limit: "0" })).toBe("limit: expected an integer from 1 to 100")
      expect(yield* parse({ limit: "101" })).toBe("limit: expected an integer from 1 to 100")
      expect(yield* parse({ limit: "1.5" })).toBe("limit: expected an integer from 1 to 100")
      expect(yield* parse({ status: "done" })).toBe(
        "status: expected one of pending, running, completed, failed, cancelled, skipped"
      )
      expect(yield* parse({ ids: Array.from({ length: 101 }, (_, i) => `bld_${i}`).join(",") })).toBe(
        "ids: at most 100 ids"
      )
      expect(yield* parse({ ids: "bld_a,,bld_b" })).toBe("ids[1]: expected an id such as bld_01jd…")
      expect(yield* parse({ ids: "bld_a,' OR 1=1" })).toBe("ids[1]: expected an id such as bld_01jd…")
      expect(yield* parse({ after: "x", before: "y" })).toBe("after and before cannot be combined")
      expect(yield* parse({ after: "x" })).toBe("after: not a cursor this API issued")
    })
  )
})
