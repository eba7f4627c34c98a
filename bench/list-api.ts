/**
 * `npm run bench -- list_api`: the builds list as the API serves it — `listBuilds` with the page, its exact
 * `pageInfo.total` and the neighbour probe — at 1,000,000 builds in one workspace (10 apps), on SQLite and
 * on PostgreSQL. Cases: each shorthand filter (`workspace_id`, `app_id`, `status`, `trigger`,
 * `created_by`) in the default order, and every sortable field alone in each direction, with both nulls
 * orders for a nullable field. The first page of 100; the median of `KILN_BENCH_RUNS` (default 5) calls
 * per case. `KILN_BENCH_ROWS` changes the size; the SQLite file is built once into `.kiln/bench/` and
 * reused, the PostgreSQL schema is filled for the run. Lines `list_api: <storage>/<case>=<p50 ms>`, then
 * `list_api: worst_p50_ms=<n> worst_case=<name>`.
 */
import { performance } from "node:perf_hooks"
import { NodeRuntime } from "@effect/platform-node"
import * as PgTesting from "@kiln/adapter-postgres/testing"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, App, type AppVersion, Fields, Query, Storage } from "@kiln/core"
import { SqlRows } from "@kiln/core/adapter"
import Database from "better-sqlite3"
import { Effect } from "effect"
import pg from "pg"
import { cachedDataset, generatedBuilds, progress } from "./build-rows.ts"
import { median, pgStorage, postgres } from "./pipeline.ts"

const total = Number(process.env.KILN_BENCH_ROWS ?? 1_000_000)
const runs = Number(process.env.KILN_BENCH_RUNS ?? 5)
const appCount = 10
const file = `.kiln/bench/list-api-${total}.db`
const datasetVersion = "2"

/** One workspace with `appCount` apps and a ready version of each, through storage. */
const workspace = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  const created = yield* storage.createWorkspace({ name: "one" })
  const versions = yield* Effect.forEach(Array.from({ length: appCount }), (_, i) =>
    Effect.flatMap(
      storage.createApp(Access.all, {
        workspaceId: created.id,
        handle: `app-${i}`,
        name: `App ${i}`,
        kind: "app",
        build: App.defaultBuildSettings
      }),
      (app) =>
        storage.createAppVersion(Access.all, {
          appId: app.id,
          source: {
            type: "git",
            url: `https://git.example.com/app-${i}.git`,
            commitSha: i.toString(16).padStart(40, "a")
          }
        })
    )
  )
  return versions
})

/** The builds written into the schema with one `INSERT … SELECT FROM unnest` per 10,000, typed per column. */
const seedPostgres = (url: string, schema: string, versions: ReadonlyArray<AppVersion.AppVersion>) =>
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      await client.query(`SET search_path TO "${schema}"`)
      const types = new Map(
        (
          await client.query<{ column_name: string; data_type: string }>(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'builds'",
            [schema]
          )
        ).rows.map((row) => [row.column_name, row.data_type])
      )
      const started = performance.now()
      const report = progress(started)
      let columns: ReadonlyArray<keyof SqlRows.BuildRow> = []
      let batch: Array<SqlRows.BuildRow> = []
      let written = 0
      const flush = async () => {
        await client.query(
          `INSERT INTO builds (${columns.join(", ")}) SELECT * FROM unnest(${columns
            .map((column, i) => `$${i + 1}::${types.get(column)}[]`)
            .join(", ")})`,
          columns.map((column) => batch.map((row) => row[column]))
        )
        written += batch.length
        batch = []
        report(written)
      }
      for (const build of generatedBuilds(total, versions)) {
        const row = SqlRows.fromBuild(build)
        if (columns.length === 0) columns = Object.keys(row) as Array<keyof SqlRows.BuildRow>
        batch.push(row)
        if (batch.length === 10_000) await flush()
      }
      if (batch.length > 0) await flush()
      await client.query("ANALYZE builds")
    } finally {
      await client.end()
    }
  })

interface Ids {
  readonly workspaceId: string
  readonly appId: string
}

const idsOf = (versions: ReadonlyArray<AppVersion.AppVersion>): Ids => ({
  workspaceId: versions[0]!.workspaceId,
  appId: versions[3]!.appId
})

/** Every case's query parameters, by name. */
const cases = (ids: Ids) => {
  const all: Array<{ readonly name: string; readonly params: Record<string, string> }> = [
    { name: "workspace_id", params: { workspace_id: ids.workspaceId } },
    { name: "app_id", params: { app_id: ids.appId } },
    { name: "status=failed", params: { status: "failed" } },
    { name: "trigger=redeploy", params: { trigger: "redeploy" } },
    { name: "created_by=user-7", params: { created_by: "user-7" } }
  ]
  for (const [name, field] of Object.entries(Fields.builds.fields)) {
    if (!field.sort) continue
    const directions = field.nullable
      ? ["asc_nulls_first", "asc_nulls_last", "desc_nulls_first", "desc_nulls_last"]
      : ["asc", "desc"]
    for (const direction of directions) {
      all.push({ name: `${name} ${direction}`, params: { orderBy: JSON.stringify([{ [name]: direction }]) } })
    }
  }
  return all
}

interface Result {
  readonly name: string
  readonly p50: number
}

/** Each case's median call, printed as it is measured. */
const measure = (label: string, ids: Ids) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const results: Array<Result> = []
    for (const { name, params } of cases(ids)) {
      const query = yield* Query.fromParams(Fields.builds, Access.all, { limit: "100", ...params })
      const samples: Array<number> = []
      for (let run = 0; run < runs; run++) {
        const started = performance.now()
        yield* storage.listBuilds(Access.all, query)
        samples.push(performance.now() - started)
      }
      const p50 = median(samples)
      results.push({ name: `${label}/${name}`, p50 })
      console.log(`list_api: ${label}/${name}=${p50.toFixed(2)}`)
    }
    return results
  })

const sqlite = Effect.gen(function* () {
  yield* cachedDataset(file, datasetVersion, total, workspace)
  const db = new Database(file, { readonly: true })
  const ids = db
    .prepare<[], { workspaceId: string; appId: string }>(
      "SELECT workspace_id AS workspaceId, app_id AS appId FROM app_versions ORDER BY created_at, id LIMIT 1 OFFSET 3"
    )
    .get()!
  db.close()
  return yield* measure("sqlite", ids).pipe(Effect.provide(SqliteStorage.layer({ filename: file })))
})

const postgresql = Effect.gen(function* () {
  const url = yield* postgres
  const schema = PgTesting.uniqueSchema("kiln_list")
  return yield* Effect.gen(function* () {
    const versions = yield* workspace
    console.log(`seeding ${total.toLocaleString()} builds into PostgreSQL schema ${schema}`)
    yield* seedPostgres(url, schema, versions)
    return yield* measure("postgres", idsOf(versions))
  }).pipe(Effect.provide(pgStorage(url, schema)))
})

const bench = Effect.gen(function* () {
  console.log(
    `${total.toLocaleString()} builds in one workspace of ${appCount} apps; first page of 100 with its total; medians of ${runs} calls`
  )
  const results = [...(yield* sqlite), ...(yield* postgresql)]
  const worst = results.reduce((a, b) => (b.p50 > a.p50 ? b : a))
  console.log(`list_api: worst_p50_ms=${worst.p50.toFixed(2)} worst_case=${worst.name}`)
})

NodeRuntime.runMain(Effect.scoped(bench))
