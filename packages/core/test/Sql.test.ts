import { describe, expect, it } from "@effect/vitest"
import { Access, Fields, Filter, Id, OrderBy, type Query } from "@kiln/core"
import { Sql } from "@kiln/core/adapter"
import { DateTime, Effect, Result } from "effect"

// Filters, keysets and nulls, without the part of the builds in flight, which has a test of its own.
const builds = { ...Fields.builds, unsorted: undefined }
const ws = (n: number) => Id.fromUuid("wsp", `0190b3a0-0000-7000-8000-00000000000${n}`)!

const query = (
  options: {
    readonly filter?: string
    readonly orderBy?: string
    readonly cursor?: Query.ListQuery["cursor"]
    readonly limit?: number
  } = {}
): Query.ListQuery => ({
  filter: options.filter === undefined ? undefined : Result.getOrThrow(Filter.parse(builds, options.filter)),
  orderBy:
    options.orderBy === undefined
      ? OrderBy.complete(OrderBy.defaultOrder)
      : Result.getOrThrow(OrderBy.parse(builds, options.orderBy)),
  limit: options.limit ?? 10,
  cursor: options.cursor
})

const compile = (dialect: Sql.Dialect, q: Query.ListQuery, access: Access.Access = Access.all) =>
  Sql.compileList(dialect, builds, access, q)

describe("Sql.compileList", () => {
  it("compiles a filter, the scope and the default order, binding every value", () => {
    const q = query({
      filter: '{"status":{"in":["failed","cancelled"]},"createdAt":{"gte":"2026-01-01T00:00:00Z"}}'
    })
    const sqlite = compile("sqlite", q, Access.workspaces([ws(1)]))
    expect(sqlite.page.text).toBe(
      'SELECT t0.* FROM "builds" t0 WHERE t0."workspace_id" = ? AND (t0."status" IN (?, ?) AND t0."created_at" >= ?) ORDER BY t0."created_at" DESC, t0."id" DESC LIMIT ?'
    )
    expect(sqlite.page.params).toEqual([ws(1), "failed", "cancelled", 1767225600000, 11])
    const postgres = compile("postgres", q, Access.workspaces([ws(1), ws(2)]))
    expect(postgres.page.text).toBe(
      'SELECT t0.* FROM "builds" t0 WHERE t0."workspace_id" IN ($1, $2) AND (t0."status" IN ($3, $4) AND t0."created_at" >= $5) ORDER BY t0."created_at" DESC, t0."id" DESC LIMIT $6'
    )
    expect(postgres.count.text).toBe(
      'SELECT count(*) AS n FROM "builds" t0 WHERE t0."workspace_id" IN ($1, $2) AND (t0."status" IN ($3, $4) AND t0."created_at" >= $5)'
    )
    expect(postgres.count.params).toEqual([ws(1), ws(2), "failed", "cancelled", 1767225600000])
  })

  it("sees nothing for a caller with no workspaces, and everything for the host", () => {
    expect(compile("sqlite", query(), Access.workspaces([])).count.text).toBe(
      'SELECT CAST(coalesce(sum(t0."n"), 0) AS BIGINT) AS n FROM "build_totals" t0 WHERE 1 = 0'
    )
    expect(compile("sqlite", query(), Access.all).count.text).toBe(
      'SELECT CAST(coalesce(sum(t0."n"), 0) AS BIGINT) AS n FROM "build_totals" t0'
    )
  })

  it("sums a total from the first kept counts with every field of its equalities, and counts rows otherwise", () => {
    const summed = compile(
      "postgres",
      query({ filter: '{"status":{"in":["failed","cancelled"]},"trigger":{"eq":"auto"}}' }),
      Access.workspaces([Id.fromUuid("wsp", "0190b3a0-0000-7000-8000-000000000001")!])
    ).count
    expect(summed.text).toBe(
      'SELECT CAST(coalesce(sum(t0."n"), 0) AS BIGINT) AS n FROM "build_totals" t0 WHERE t0."workspace_id" = $1 AND t0."status" IN ($2, $3) AND t0."build_trigger" = $4'
    )
    // The creator is only in the finer counts.
    expect(
      compile("sqlite", query({ filter: '{"createdBy":{"eq":"ada"},"status":{"eq":"failed"}}' })).count.text
    ).toBe(
      'SELECT CAST(coalesce(sum(t0."n"), 0) AS BIGINT) AS n FROM "build_counts" t0 WHERE t0."created_by" = ? AND t0."status" = ?'
    )
    // Anything else, and '' (which the counts keep for a build with no creator), counts the builds.
    for (const filter of [
      '{"status":{"neq":"failed"}}',
      '{"or":[{"status":{"eq":"failed"}},{"trigger":{"eq":"auto"}}]}',
      '{"createdAt":{"gt":"2026-01-01T00:00:00Z"}}',
      '{"createdBy":{"eq":""}}'
    ]) {
      expect(compile("sqlite", query({ filter })).count.text, filter).toMatch(
        /^SELECT count\(\*\) AS n FROM "builds"/
      )
    }
  })

  it("keeps predicates on nullable fields two-valued, so NOT means what it says", () => {
    const q = query({
      filter: '{"not":{"createdBy":{"eq":"ada"}},"error":{"neq":"x"},"outcome":{"notIn":["lost"]}}'
    })
    expect(compile("sqlite", q).count.text).toBe(
      'SELECT count(*) AS n FROM "builds" t0 WHERE (NOT (t0."created_by" IS NOT NULL AND t0."created_by" = ?) AND (t0."error" IS NULL OR t0."error" <> ?) AND (t0."outcome" IS NULL OR t0."outcome" NOT IN (?)))'
    )
  })

  it("escapes text patterns: GLOB on SQLite, LIKE with ESCAPE on Postgres", () => {
    const q = query({
      filter:
        '{"createdBy":{"contains":"50%_*?[x]\\\\"},"error":{"startsWith":"a"},"imageTag":{"endsWith":"z"}}'
    })
    const sqlite = compile("sqlite", q).count
    expect(sqlite.text).toContain('t0."created_by" GLOB ?')
    expect(sqlite.params).toEqual(["*50%_[*][?][[]x]\\*", "a*", "*z"])
    const postgres = compile("postgres", q).count
    expect(postgres.text).toContain(`t0."created_by" LIKE $1 ESCAPE '\\'`)
    expect(postgres.params).toEqual(["%50\\%\\_*?[x]\\\\%", "a%", "%z"])
  })

  it("compiles relations as EXISTS: to-one, some, none, and every as NOT EXISTS … NOT", () => {
    const q = query({
      filter:
        '{"app":{"handle":{"eq":"web"}},"steps":{"some":{"status":{"eq":"failed"}},"every":{"exitCode":{"eq":0}},"none":{"name":{"eq":"push"}}}}'
    })
    expect(compile("sqlite", q).count.text).toBe(
      'SELECT count(*) AS n FROM "builds" t0 WHERE (EXISTS (SELECT 1 FROM "apps" t1 WHERE t1."id" = t0."entity_id" AND t1."handle" = ?) AND EXISTS (SELECT 1 FROM "build_steps" t2 WHERE t2."build_id" = t0."id" AND t2."status" = ?) AND NOT EXISTS (SELECT 1 FROM "build_steps" t3 WHERE t3."build_id" = t0."id" AND NOT (t3."exit_code" IS NOT NULL AND t3."exit_code" = ?)) AND NOT EXISTS (SELECT 1 FROM "build_steps" t4 WHERE t4."build_id" = t0."id" AND t4."name" = ?))'
    )
  })

  it("uses a row-value comparison when all keys are non-null and share a direction", () => {
    const after = compile("sqlite", query({ cursor: { direction: "after", values: [1000, "bld_x"] } }))
    expect(after.page.text).toBe(
      'SELECT t0.* FROM "builds" t0 WHERE (t0."created_at", t0."id") < (?, ?) ORDER BY t0."created_at" DESC, t0."id" DESC LIMIT ?'
    )
    expect(after.page.params).toEqual([1000, "bld_x", 11])
    const before = compile("postgres", query({ cursor: { direction: "before", values: [1000, "bld_x"] } }))
    expect(before.page.text).toBe(
      'SELECT t0.* FROM "builds" t0 WHERE (t0."created_at", t0."id") > ($1, $2) ORDER BY t0."created_at" ASC, t0."id" ASC LIMIT $3'
    )
  })

  it("uses the expanded form plus a bound on the leading key for mixed directions and nulls", () => {
    // The neighbor probe keeps the whole order in one query, as a page ordered on non-null keys does.
    const orderBy = '[{"completedAt":"desc_nulls_last"},{"sequenceNumber":"asc"}]'
    const nonNull = compile("sqlite", query({ orderBy })).neighbor([5000, 7, "bld_x"], "after")
    expect(nonNull.text).toBe(
      'SELECT 1 AS found FROM "builds" t0 WHERE (t0."completed_at" <= ? OR t0."completed_at" IS NULL) AND ((t0."completed_at" < ? OR t0."completed_at" IS NULL) OR (t0."completed_at" = ? AND t0."sequence_number" > ?) OR (t0."completed_at" = ? AND t0."sequence_number" = ? AND t0."id" > ?)) LIMIT 1'
    )
    expect(nonNull.params).toEqual([5000, 5000, 5000, 7, 5000, 7, "bld_x"])
    // Past the last non-null value every remaining row has a null leading key: the bound is IS NULL.
    const inNulls = compile("sqlite", query({ orderBy })).neighbor([null, 7, "bld_x"], "after")
    expect(inNulls.text).toContain(
      'WHERE t0."completed_at" IS NULL AND ((t0."completed_at" IS NULL AND t0."sequence_number" > ?) OR (t0."completed_at" IS NULL AND t0."sequence_number" = ? AND t0."id" > ?))'
    )
    // With nulls first, every non-null row is after a null: no bound, and the first key's own term.
    const nullsFirst = compile("sqlite", query({ orderBy: '[{"error":"asc_nulls_first"}]' })).neighbor(
      [null, "bld_x"],
      "after"
    )
    expect(nullsFirst.text).toContain(
      'WHERE (t0."error" IS NOT NULL OR (t0."error" IS NULL AND t0."id" > ?))'
    )
    // A page whose mixed directions follow a non-null leading key is one query with that form.
    const mixed = compile(
      "postgres",
      query({
        orderBy: '[{"sequenceNumber":"desc"},{"completedAt":"asc"}]',
        cursor: { direction: "after", values: [7, 5000, "bld_x"] }
      })
    )
    expect(mixed.page.text).toBe(
      'SELECT t0.* FROM "builds" t0 WHERE t0."sequence_number" <= $1 AND (t0."sequence_number" < $2 OR (t0."sequence_number" = $3 AND (t0."completed_at" > $4 OR t0."completed_at" IS NULL)) OR (t0."sequence_number" = $5 AND t0."completed_at" = $6 AND t0."id" > $7)) ORDER BY t0."sequence_number" DESC, t0."completed_at" ASC NULLS LAST, t0."id" ASC LIMIT $8'
    )
  })

  it("splits a page ordered first on a nullable field into its null rows and the others, each in an indexable order", () => {
    const orderBy = '[{"completedAt":"desc_nulls_last"}]'
    const first = compile("sqlite", query({ orderBy }))
    expect(first.page.text).toBe(
      'SELECT * FROM (SELECT * FROM (SELECT t0.* FROM "builds" t0 WHERE t0."completed_at" IS NULL ORDER BY t0."id" DESC LIMIT ?) p0 UNION ALL SELECT * FROM (SELECT t1.* FROM "builds" t1 WHERE t1."completed_at" IS NOT NULL ORDER BY t1."completed_at" DESC, t1."id" DESC LIMIT ?) p1) u ORDER BY u."completed_at" DESC NULLS LAST, u."id" DESC LIMIT ?'
    )
    expect(first.page.params).toEqual([11, 11, 11])
    // Among the values, nulls last: every null row is still ahead, and the values go on from the cursor.
    const inValues = compile(
      "postgres",
      query({ orderBy, cursor: { direction: "after", values: [5000, "bld_x"] } })
    )
    expect(inValues.page.text).toBe(
      'SELECT * FROM (SELECT * FROM (SELECT t0.* FROM "builds" t0 WHERE t0."completed_at" IS NULL ORDER BY t0."id" DESC LIMIT $1) p0 UNION ALL SELECT * FROM (SELECT t1.* FROM "builds" t1 WHERE t1."completed_at" IS NOT NULL AND (t1."completed_at", t1."id") < ($2, $3) ORDER BY t1."completed_at" DESC, t1."id" DESC LIMIT $4) p1) u ORDER BY u."completed_at" DESC NULLS LAST, u."id" DESC LIMIT $5'
    )
    // Among the nulls, nulls last: nothing else is after, so the page is the null part alone, by id.
    const inNulls = compile(
      "sqlite",
      query({ orderBy, cursor: { direction: "after", values: [null, "bld_x"] } })
    )
    expect(inNulls.page.text).toBe(
      'SELECT t0.* FROM "builds" t0 WHERE t0."completed_at" IS NULL AND (t0."id") < (?) ORDER BY t0."id" DESC LIMIT ?'
    )
    // Nulls first: a cursor among the values leaves only values after it; one among the nulls, all of them.
    const nullsFirst = '[{"completedAt":"asc_nulls_first"}]'
    const pastNulls = compile(
      "sqlite",
      query({ orderBy: nullsFirst, cursor: { direction: "after", values: [5000, "bld_x"] } })
    )
    expect(pastNulls.page.text).toBe(
      'SELECT t0.* FROM "builds" t0 WHERE t0."completed_at" IS NOT NULL AND (t0."completed_at", t0."id") > (?, ?) ORDER BY t0."completed_at" ASC, t0."id" ASC LIMIT ?'
    )
    const withinNulls = compile(
      "sqlite",
      query({ orderBy: nullsFirst, cursor: { direction: "after", values: [null, "bld_x"] } })
    )
    expect(withinNulls.page.text).toContain(
      'SELECT t0.* FROM "builds" t0 WHERE t0."completed_at" IS NULL AND (t0."id") > (?) ORDER BY t0."id" ASC LIMIT ?) p0 UNION ALL SELECT * FROM (SELECT t1.* FROM "builds" t1 WHERE t1."completed_at" IS NOT NULL ORDER BY'
    )
  })

  it("keeps a page ordered first on a nullable field without sort indexes one query: split, it would read every row twice", () => {
    const unindexed = { ...builds, sortIndexes: [] }
    const text = Sql.compileList(
      "sqlite",
      unindexed,
      Access.all,
      query({ orderBy: '[{"error":"desc_nulls_last"}]' })
    ).page.text
    expect(text).toBe(
      'SELECT t0.* FROM "builds" t0 ORDER BY t0."error" DESC NULLS LAST, t0."id" DESC LIMIT ?'
    )
  })

  it("probes for a neighbor beyond a row in either direction", () => {
    const statements = compile("sqlite", query())
    expect(statements.neighbor([1000, "bld_x"], "before").text).toBe(
      'SELECT 1 AS found FROM "builds" t0 WHERE (t0."created_at", t0."id") > (?, ?) LIMIT 1'
    )
    expect(statements.neighbor([1000, "bld_x"], "after").text).toBe(
      'SELECT 1 AS found FROM "builds" t0 WHERE (t0."created_at", t0."id") < (?, ?) LIMIT 1'
    )
  })

  it("reads the builds in flight as a part of their own: the others from the sort indexes, these from their index", () => {
    const page = Sql.compileList(
      "sqlite",
      Fields.builds,
      Access.workspaces([ws(1)]),
      query({ limit: 2 })
    ).page
    expect(page.text).toBe(
      `SELECT * FROM (SELECT * FROM (SELECT t0.* FROM "builds" t0 WHERE t0."workspace_id" = ? AND t0."phase" NOT IN ('initializing', 'running') ORDER BY t0."created_at" DESC, t0."id" DESC LIMIT ?) p0 UNION ALL SELECT * FROM (SELECT t1.* FROM "builds" t1 INDEXED BY "builds_active_by_workspace" WHERE t1."workspace_id" = ? AND t1."phase" IN ('initializing', 'running') ORDER BY t1."created_at" DESC, t1."id" DESC LIMIT ?) p1) u ORDER BY u."created_at" DESC, u."id" DESC LIMIT ?`
    )
    expect(page.params).toEqual([ws(1), 3, ws(1), 3, 3])
    // PostgreSQL picks the index itself; a neighbor is in either part.
    const postgres = Sql.compileList("postgres", Fields.builds, Access.all, query())
    expect(postgres.page.text).toContain(
      `FROM "builds" t1 WHERE t1."phase" IN ('initializing', 'running') ORDER BY`
    )
    expect(postgres.neighbor([1000, "bld_x"], "after").text).toBe(
      `SELECT 1 AS found WHERE EXISTS (SELECT 1 AS found FROM "builds" t0 WHERE t0."phase" NOT IN ('initializing', 'running') AND (t0."created_at", t0."id") < ($1, $2) LIMIT 1) OR EXISTS (SELECT 1 AS found FROM "builds" t1 WHERE t1."phase" IN ('initializing', 'running') AND (t1."created_at", t1."id") < ($3, $4) LIMIT 1)`
    )
  })

  it("narrows tokens to those whose every granted workspace the caller holds", () => {
    const tokens = Sql.compileList("postgres", Fields.tokens, Access.workspaces([ws(1)]), {
      ...query(),
      orderBy: OrderBy.complete(OrderBy.defaultOrder)
    })
    expect(tokens.count.text).toBe(
      'SELECT count(*) AS n FROM "api_tokens" t0 WHERE NOT t0."all_workspaces" AND NOT EXISTS (SELECT 1 FROM "token_workspaces" tw WHERE tw."token_id" = t0."id" AND tw."workspace_id" NOT IN ($1))'
    )
  })
})

describe("Sql.runList", () => {
  /** An executor over fixed answers that records which statements ran: a unit test of the logic only. */
  interface Row {
    readonly id: string
    readonly createdAt: DateTime.Utc
  }
  const executor = (rows: ReadonlyArray<Row>, total: number) => {
    const ran: Array<string> = []
    const answer =
      <A>(name: string, value: A) =>
      () =>
        Effect.sync(() => {
          ran.push(name)
          return value
        })
    return {
      ran,
      execute: { rows: answer("rows", rows), count: answer("count", total), exists: answer("exists", true) }
    }
  }
  const table = Fields.builds as Fields.Table<Row>
  const row = (n: number): Row => ({ id: `bld_${n}`, createdAt: DateTime.makeUnsafe(n) })
  const after = { direction: "after" as const, values: [5, "bld_5"] }

  it.effect("counts the total unless the query says countTotal: false, and pages alike either way", () =>
    Effect.gen(function* () {
      const page = query({ limit: 2, cursor: after })
      const counting = executor([row(4), row(3), row(2)], 40)
      const counted = yield* Sql.runList("sqlite", table, Access.all, page, counting.execute)
      expect(counting.ran).toEqual(["rows", "count", "exists"])
      const skipping = executor([row(4), row(3), row(2)], 40)
      const skipped = yield* Sql.runList(
        "sqlite",
        table,
        Access.all,
        { ...page, countTotal: false },
        skipping.execute
      )
      expect(skipping.ran).toEqual(["rows", "exists"])
      expect(skipped).toEqual({ ...counted, total: 0 })
      expect(counted).toMatchObject({ total: 40, hasNextPage: true, hasPreviousPage: true })

      // An empty page still learns whether rows lie before the cursor, from the count.
      const empty = executor([], 3)
      const nothing = yield* Sql.runList(
        "sqlite",
        table,
        Access.all,
        { ...page, countTotal: false },
        empty.execute
      )
      expect(nothing).toMatchObject({ rows: [], hasNextPage: false, hasPreviousPage: true })
    })
  )
})
