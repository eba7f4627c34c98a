import { describe, expect, it } from "@effect/vitest"
import { Access, Fields, Query } from "@kiln/core"
import { Sql } from "@kiln/core/adapter"
import { Cause, Effect, Exit } from "effect"
import fc from "fast-check"

const builds = Fields.builds
const CANARY = "CANARY7f3a"

const injections = [
  "' OR 1=1 --",
  '"; DROP TABLE builds; --',
  "`x`",
  ") UNION SELECT * FROM api_tokens --",
  "\\",
  "%",
  "_",
  "*",
  "[",
  "$1",
  "?",
  "\u0000",
  "\ud800",
  "\udfff",
  "😀",
  "é",
  "\n\r\t",
  "x".repeat(64 * 1024)
]

/** A hostile string that always carries the canary, so any leak into SQL text is visible. */
const hostileString = fc
  .tuple(fc.constantFrom(...injections), fc.string({ maxLength: 20 }), fc.constantFrom(...injections))
  .map(([a, b, c]) => `${a}${CANARY}${b}${c}`)

const realFields = Object.keys(builds.fields)
const keyArbitrary = fc.oneof(
  fc.constantFrom(...realFields, "and", "or", "not", "app", "appVersion", "steps"),
  fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "prototype", "", "valueOf"),
  hostileString
)
const operatorArbitrary = fc.oneof(
  fc.constantFrom(
    "eq",
    "neq",
    "in",
    "notIn",
    "lt",
    "lte",
    "gt",
    "gte",
    "contains",
    "startsWith",
    "endsWith",
    "isNull"
  ),
  fc.constantFrom("some", "every", "none", "__proto__", "constructor"),
  hostileString
)
const valueArbitrary: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  fc.constantFrom("failed", "2026-01-01T00:00:00Z", "2026-13-45T99:99:99Z", true, false, null, 0, -1, 1e308),
  fc.double(),
  fc.array(hostileString, { maxLength: 5 }),
  fc.jsonValue({ maxDepth: 2 })
)

const { hostile } = fc.letrec((tie) => ({
  hostile: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.dictionary(keyArbitrary, fc.dictionary(operatorArbitrary, valueArbitrary, { maxKeys: 3 }), {
      maxKeys: 4
    }),
    fc.dictionary(keyArbitrary, tie("hostile"), { maxKeys: 3 }),
    fc.array(tie("hostile"), { maxLength: 3 }),
    valueArbitrary
  )
}))

const orderArbitrary = fc.oneof(
  fc.array(
    fc.dictionary(keyArbitrary, fc.oneof(fc.constantFrom("asc", "desc_nulls_last"), hostileString), {
      maxKeys: 2
    }),
    {
      maxLength: 6
    }
  ),
  fc.jsonValue({ maxDepth: 2 })
)

/** Texts that no generator produces by serializing: raw numbers out of range, deep nesting, huge lists. */
const raw = [
  '{"sequenceNumber":{"eq":1e309}}',
  '{"sequenceNumber":{"in":[1e309,-1e309]}}',
  `{"createdBy":{"eq":"${CANARY}\\u0000"}}`,
  `{"createdBy":{"eq":"${CANARY}\\ud800"}}`,
  `${'{"not":'.repeat(10_000)}{}${"}".repeat(10_000)}`,
  "[".repeat(10_000),
  JSON.stringify({ sequenceNumber: { in: Array.from({ length: 100_000 }, (_, i) => i) } }),
  JSON.stringify({ createdBy: { in: Array.from({ length: 101 }, () => CANARY) } }),
  JSON.stringify({ createdBy: { eq: CANARY + "x".repeat(64 * 1024) } }),
  '{"__proto__":{"polluted":true}}',
  '{"status":{"in":["failed"]},"status":{"eq":"x"}}',
  "",
  "{",
  "nul\u0000",
  '{"a":',
  "\ufeff{}",
  "1e309"
]

/** Runs a parse and, when it succeeds, compiles it for both dialects; any defect fails the property. */
const attempt = (params: Query.Params) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(Query.fromParams(builds, Access.workspaces([]), params))
    if (Exit.isFailure(exit)) {
      expect(Cause.hasDies(exit.cause), `defect for ${JSON.stringify(params).slice(0, 300)}`).toBe(false)
      const error = Cause.squash(exit.cause) as { readonly _tag: string; readonly message: string }
      expect(["InvalidQuery", "InvalidCursor"]).toContain(error._tag)
      expect(error.message.length).toBeLessThan(2_000)
      return "rejected" as const
    }
    for (const dialect of ["sqlite", "postgres"] as const) {
      const statements = Sql.compileList(dialect, builds, Access.all, exit.value)
      for (const statement of [statements.page, statements.count]) {
        expect(statement.text).not.toContain(CANARY)
        const placeholders = statement.text.match(dialect === "sqlite" ? /\?/g : /\$\d+/g) ?? []
        expect(placeholders.length).toBe(statement.params.length)
      }
    }
    return "accepted" as const
  })

describe("query fuzzing", () => {
  it.effect(
    "answers every random and hostile filter with a typed rejection or a safe query",
    () =>
      Effect.gen(function* () {
        const tally = { accepted: 0, rejected: 0 }
        const cases = fc.sample(
          fc.record({
            filter: fc.oneof(
              hostile.map((value) => JSON.stringify(value) ?? "null"),
              fc.string(),
              fc.constantFrom(...raw),
              // Well-formed filters whose values are hostile: these must be accepted and bound.
              fc
                .tuple(
                  fc.constantFrom("createdBy", "error", "imageTag", "commitSha"),
                  operatorArbitrary,
                  hostileString
                )
                .map(([field, op, value]) => JSON.stringify({ [field]: { [op]: value } }))
            ),
            orderBy: fc.option(
              orderArbitrary.map((value) => JSON.stringify(value) ?? "null"),
              { nil: undefined }
            ),
            limit: fc.option(
              fc.oneof(fc.constantFrom("1", "100", "0", "-1", "1e3", "abc", ""), fc.string()),
              { nil: undefined }
            ),
            ids: fc.option(fc.oneof(hostileString, fc.constantFrom("bld_a,bld_b", "")), { nil: undefined }),
            status: fc.option(fc.oneof(hostileString, fc.constantFrom("failed")), { nil: undefined }),
            after: fc.option(fc.oneof(hostileString, fc.constantFrom("a.b", ".", "")), { nil: undefined })
          }),
          { numRuns: 6_000, seed: 4242 }
        )
        for (const [i, testCase] of cases.entries()) {
          // Every other case sends the filter alone, so one bad parameter does not mask the rest.
          const params = Object.fromEntries(
            Object.entries(testCase).filter(
              ([key, v]) => v !== undefined && (i % 2 === 1 || key === "filter")
            )
          ) as Query.Params
          tally[yield* attempt(params)]++
        }
        for (const text of raw) tally[yield* attempt({ filter: text })]++
        // Both outcomes must occur, or the generator is not exercising the parser.
        expect(tally.accepted).toBeGreaterThan(100)
        expect(tally.rejected).toBeGreaterThan(1_000)
        console.info(
          `query fuzzing: ${tally.accepted} accepted, ${tally.rejected} rejected, no defect, no canary in SQL`
        )
      }),
    120_000
  )

  it.effect("accepts valid filters built from hostile values, binding them instead of inlining them", () =>
    Effect.gen(function* () {
      const values = fc
        .sample(hostileString, { numRuns: 500, seed: 7 })
        .filter((s) => s.length <= 1024 && s.isWellFormed() && !s.includes("\u0000"))
      let accepted = 0
      for (const value of values) {
        const filter = JSON.stringify({
          or: [
            { createdBy: { contains: value } },
            { error: { in: [value] } },
            { app: { handle: { startsWith: value } } }
          ]
        })
        if ((yield* attempt({ filter })) === "accepted") accepted++
      }
      expect(accepted).toBe(values.length)
      expect(accepted).toBeGreaterThan(100)
    })
  )
})
