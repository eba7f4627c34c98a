/**
 * `npm run bench -- list`: keyset pagination on 1,000,000 builds in a SQLite file across 100 workspaces.
 *
 * For each case (the default order with and without a filter, and a mixed-direction order with nulls) it
 * times the compiled page statement on page 1 and on a page ~500,000 rows deep by keyset, OFFSET at the
 * same depth as the baseline, and `total`; then the whole `listBuilds` call (page + total + neighbor
 * probe) for page 1 and the deep page. Medians of alternating runs. The last line is
 * `list: deep/first=<worst case> offset/keyset=<least gain>`.
 *
 * The dataset is built once into `.kiln/bench/` (`KILN_BENCH_ROWS` changes its size) and reused.
 */
import { performance } from "node:perf_hooks"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, App, Fields, Query, Storage } from "@kiln/core"
import { Sql, SqlRows } from "@kiln/core/adapter"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { cachedDataset } from "./build-rows.ts"

const total = Number(process.env.KILN_BENCH_ROWS ?? 1_000_000)
const depth = Math.floor(total / 2)
const workspaceCount = 100
const runs = 15
const file = `.kiln/bench/list-${total}.db`
const datasetVersion = "3"

const builds = Fields.builds

/** One app with a ready version in each of the workspaces, through storage. */
const workspaces = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  return yield* Effect.forEach(Array.from({ length: workspaceCount }), (_, i) =>
    Effect.gen(function* () {
      const workspace = yield* storage.createWorkspace({ name: `workspace ${i}` })
      const app = yield* storage.createApp(Access.all, {
        workspaceId: workspace.id,
        handle: `app-${i}`,
        name: `App ${i}`,
        kind: "app",
        build: App.defaultBuildSettings
      })
      return yield* storage.createAppVersion(Access.all, {
        appId: app.id,
        source: {
          type: "git",
          url: `https://git.example.com/app-${i}.git`,
          commitSha: i.toString(16).padStart(40, "a")
        }
      })
    })
  )
})

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}
const ms = (value: number) => `${value.toFixed(2)}ms`

const cases = [
  { name: "createdAt desc", orderBy: undefined, filter: undefined },
  {
    name: "createdAt desc + filter status in (completed, failed)",
    orderBy: undefined,
    filter: '{"status":{"in":["completed","failed"]}}'
  },
  {
    name: "completedAt desc_nulls_last, sequenceNumber asc",
    orderBy: '[{"completedAt":"desc_nulls_last"},{"sequenceNumber":"asc"}]',
    filter: undefined
  }
] as const

const measure = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  const db = new Database(file, { readonly: true })
  const timed = (statement: Sql.Statement) => {
    const prepared = db.prepare(statement.text)
    return () => {
      const start = performance.now()
      prepared.all(...(statement.params as Array<unknown>))
      return performance.now() - start
    }
  }
  const deepRatios: Array<number> = []
  const offsetRatios: Array<number> = []
  for (const testCase of cases) {
    const params = {
      limit: "100",
      ...(testCase.orderBy === undefined ? {} : { orderBy: testCase.orderBy }),
      ...(testCase.filter === undefined ? {} : { filter: testCase.filter })
    }
    const query = yield* Query.fromParams(builds, Access.all, params)
    const first = Sql.compileList("sqlite", builds, Access.all, query)
    // OFFSET at the same depth: the baseline keyset pagination replaces.
    const offset = {
      text: first.page.text.replace(/LIMIT \?$/, "LIMIT ? OFFSET ?"),
      params: [...first.page.params.slice(0, -1), query.limit + 1, depth]
    }
    const [boundary] = db
      .prepare(offset.text)
      .all(...offset.params.slice(0, -2), 1, depth - 1) as Array<SqlRows.BuildRow>
    const position = Query.positionOf(Fields.builds, query.orderBy, SqlRows.toBuild(boundary!))
    const deepQuery: Query.ListQuery<Fields.BuildField> = {
      ...query,
      cursor: { direction: "after", values: position }
    }
    const deep = Sql.compileList("sqlite", builds, Access.all, deepQuery)
    const runners = {
      first: timed(first.page),
      deep: timed(deep.page),
      offset: timed(offset),
      total: timed(first.count)
    }
    const samples = {
      first: [] as Array<number>,
      deep: [] as Array<number>,
      offset: [] as Array<number>,
      total: [] as Array<number>
    }
    for (let run = 0; run < runs; run++) {
      for (const key of ["first", "deep", "offset", "total"] as const) samples[key].push(runners[key]())
    }
    const api = { first: [] as Array<number>, deep: [] as Array<number> }
    for (let run = 0; run < 5; run++) {
      for (const [key, q] of [
        ["first", query],
        ["deep", deepQuery]
      ] as const) {
        const start = performance.now()
        yield* storage.listBuilds(Access.all, q)
        api[key].push(performance.now() - start)
      }
    }
    const [firstMs, deepMs, offsetMs, totalMs] = [
      median(samples.first),
      median(samples.deep),
      median(samples.offset),
      median(samples.total)
    ]
    deepRatios.push(deepMs / firstMs)
    offsetRatios.push(offsetMs / deepMs)
    console.log(
      `list[${testCase.name}]: first=${ms(firstMs)} deep=${ms(deepMs)} offset=${ms(offsetMs)} total=${ms(totalMs)} ` +
        `deep/first=${(deepMs / firstMs).toFixed(2)} offset/keyset=${(offsetMs / deepMs).toFixed(1)} ` +
        `api_first=${ms(median(api.first))} api_deep=${ms(median(api.deep))}`
    )
  }
  db.close()
  console.log(
    `list: deep/first=${Math.max(...deepRatios).toFixed(2)} offset/keyset=${Math.min(...offsetRatios).toFixed(1)}`
  )
}).pipe(Effect.provide(SqliteStorage.layer({ filename: file })))

await Effect.runPromise(
  Effect.gen(function* () {
    yield* cachedDataset(file, datasetVersion, total, workspaces)
    console.log(
      `${total.toLocaleString()} builds, ${workspaceCount} workspaces; pages of 100; deep = ${depth.toLocaleString()} rows in; medians of ${runs} runs`
    )
    yield* measure
  })
)
