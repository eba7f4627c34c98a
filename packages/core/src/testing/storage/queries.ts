import { describe, expect, it } from "@effect/vitest"
import { Clock, DateTime, Effect } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"
import * as Access from "../../Access.ts"
import * as App from "../../App.ts"
import type { BuildStep } from "../../Build.ts"
import * as Evaluator from "../../Evaluator.ts"
import * as Fields from "../../Fields.ts"
import * as OrderBy from "../../OrderBy.ts"
import * as Query from "../../Query.ts"
import { Storage } from "../../Storage.ts"
import type { MakeStorage } from "./fixtures.ts"

// ---------------------------------------------------------------------------------------------------------
// Random datasets: builds in every state, with NULLs and ties in every sortable field
// ---------------------------------------------------------------------------------------------------------

const creators = [null, "ada", "Ada", "bot:ci", "bot:release", "a_b%c", "x*y?[z]", "ünïcode", "😀 emoji", ""]
const errors = [null, "exit code 1", "exit code 2", "Exit Code 1", "timeout", "50% done_"]
const stepNames = ["prepare", "build", "push", "deploy"]

interface Plan {
  readonly app: number
  readonly version: number
  readonly creator: number
  readonly trigger: number
  readonly fate: number
  readonly error: number
  readonly steps: ReadonlyArray<{ readonly name: number; readonly status: number; readonly exit: number }>
  readonly gap: number
}

const planArbitrary: fc.Arbitrary<Plan> = fc.record({
  app: fc.nat(3),
  version: fc.nat(2),
  creator: fc.nat(creators.length - 1),
  trigger: fc.nat(2),
  fate: fc.nat(6),
  error: fc.nat(errors.length - 1),
  steps: fc.array(fc.record({ name: fc.nat(3), status: fc.nat(3), exit: fc.nat(3) }), { maxLength: 3 }),
  // Mostly no time between events, so timestamps tie.
  gap: fc.constantFrom(0, 0, 0, 1_000, 60_000)
})

const datasetArbitrary = fc.array(planArbitrary, { minLength: 20, maxLength: 60 })

/** Creates two workspaces with four apps and their versions, then one build per plan, in order. */
const populate = (plans: ReadonlyArray<Plan>) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    yield* TestClock.setTime(1_767_225_600_000)
    const workspaces = [
      yield* storage.createWorkspace({ name: "one" }),
      yield* storage.createWorkspace({ name: "two" })
    ]
    const apps = yield* Effect.forEach(["web", "api", "docs", "web2"], (handle, i) =>
      storage.createApp(Access.all, {
        workspaceId: workspaces[i % 2]!.id,
        handle,
        name: handle.toUpperCase(),
        kind: i === 2 ? "worker" : "app",
        build: App.defaultBuildSettings
      })
    )
    const versions = yield* Effect.forEach(apps, (app, a) =>
      Effect.forEach([0, 1, 2], (v) =>
        storage.createAppVersion(Access.all, {
          appId: app.id,
          source: {
            type: "git",
            url: `https://git.example.com/${app.handle}.git`,
            commitSha: `${"abc1def0"[a]}${v}`.padEnd(40, "0")
          }
        })
      )
    )
    for (const plan of plans) {
      yield* TestClock.adjust(plan.gap)
      const at = () => Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))
      const fate = plan.fate
      const build = yield* storage.createBuild(Access.all, {
        appVersionId: versions[plan.app]![plan.version]!.id,
        trigger: (["manual", "auto", "redeploy"] as const)[plan.trigger]!,
        createdBy: creators[plan.creator]!,
        ...(fate === 6 ? { skipReason: "paths excluded" } : {})
      })
      if (fate === 0 || fate === 6) continue
      if (fate === 1) {
        yield* storage.requestCancel(Access.all, build.id, errors[plan.error] ?? "cancelled")
        continue
      }
      const [claimed] = yield* storage.claimNext({ owner: `engine-${plan.app}`, leaseMs: 60_000, max: 1 })
      if (claimed === undefined || claimed.id !== build.id) continue
      const fence = { owner: claimed.owner!, attempt: claimed.attempt }
      for (const [index, step] of plan.steps.entries()) {
        const status = (["running", "succeeded", "failed", "cancelled"] as const)[step.status]!
        const stepRow: BuildStep = {
          index,
          name: stepNames[step.name]!,
          status,
          startedAt: yield* at(),
          completedAt: status === "running" ? null : yield* at(),
          exitCode: status === "running" ? null : [0, 1, 2, 137][step.exit]!,
          error: status === "failed" ? (errors[plan.error] ?? null) : null
        }
        yield* storage.recordStep(build.id, fence, stepRow)
      }
      if (fate === 2) continue
      yield* storage.transition(build.id, { _tag: "Started", at: yield* at(), ...fence })
      if (fate === 3) continue
      yield* TestClock.adjust(plan.gap)
      if (fate === 4) {
        yield* storage.transition(build.id, {
          _tag: "Failed",
          at: yield* at(),
          ...fence,
          error: errors[plan.error] ?? "failed"
        })
      } else {
        yield* storage.transition(build.id, {
          _tag: "Succeeded",
          at: yield* at(),
          ...fence,
          imageTag: plan.error % 2 === 0 ? `registry.local/${plan.app}:${plan.version}` : null,
          imageDigest: null
        })
      }
    }
    return { workspaces, apps, versions }
  })

/** Everything the oracle needs, read back through the storage itself. */
const snapshot = Effect.gen(function* () {
  const storage = yield* Storage
  const builds = (yield* storage.listBuilds(Access.all, Query.first(100_000))).rows
  const apps = (yield* storage.listApps(Access.all, Query.first(100_000))).rows
  const versions = (yield* storage.listAppVersions(Access.all, Query.first(100_000))).rows
  const steps = new Map<string, ReadonlyArray<BuildStep>>()
  for (const build of builds) steps.set(build.id, (yield* storage.getBuild(Access.all, build.id)).steps)
  const byId: { readonly [E in Fields.Entity]?: ReadonlyMap<string, Fields.Rows[E]> } = {
    apps: new Map(apps.map((app) => [app.id, app])),
    appVersions: new Map(versions.map((version) => [version.id, version]))
  }
  const byOwner: { readonly [E in Fields.Entity]?: ReadonlyMap<string, ReadonlyArray<Fields.Rows[E]>> } = {
    steps
  }
  const resolve: Evaluator.Resolve = {
    one: (entity, id) => byId[entity]?.get(id),
    many: (entity, id) => byOwner[entity]?.get(id) ?? []
  }
  const rows: { readonly [E in Fields.Entity]?: ReadonlyArray<Fields.Rows[E]> } = {
    builds,
    apps,
    appVersions: versions,
    steps: [...steps.values()].flat()
  }
  const rowsOf: RowsOf = (entity) => rows[entity] ?? []
  return { builds, resolve, rowsOf }
})

/** The dataset's rows of an entity. */
type RowsOf = <E extends Fields.Entity>(entity: E) => ReadonlyArray<Fields.Rows[E]>

// ---------------------------------------------------------------------------------------------------------
// Random queries over a dataset's own values
// ---------------------------------------------------------------------------------------------------------

const iso = (millis: number) => DateTime.formatIso(DateTime.makeUnsafe(millis))

/** A value for a field: mostly one the dataset holds, so filters select something. */
const valueFor = <Row>(field: Fields.Field<Row>, rows: ReadonlyArray<Row>) => {
  const seen = rows.map((row) => field.get(row)).filter((v) => v !== null)
  const raw = fc.oneof(
    {
      weight: 4,
      arbitrary:
        seen.length > 0
          ? fc.constantFrom(...seen)
          : fc.constant(field.type === "enum" ? field.values[0]! : field.type === "string" ? "x" : 0)
    },
    {
      weight: 1,
      arbitrary:
        field.type === "enum"
          ? fc.constantFrom(...field.values)
          : field.type === "string"
            ? fc.constantFrom("a", "b", "z", "%", "_", "*", "[", "bot:", "😀", "")
            : fc.integer({ min: 0, max: 2_000_000_000_000 })
    }
  )
  return raw.map((value) => (field.type === "timestamp" && typeof value === "number" ? iso(value) : value))
}

const substringOf = (value: unknown) =>
  typeof value === "string" && value.length > 0
    ? fc
        .tuple(fc.nat(value.length), fc.nat(value.length))
        .map(([a, b]) => value.slice(Math.min(a, b), Math.max(a, b)))
    : fc.constant(String(value))

const predicateFor = <Row>(table: Fields.Table<Row>, rows: ReadonlyArray<Row>): fc.Arbitrary<object> => {
  const filterable = Object.entries(table.fields).filter(([, field]) => field.filter)
  return fc.constantFrom(...filterable).chain(([name, field]) => {
    const value = valueFor(field, rows)
    const ops: Array<fc.Arbitrary<object>> = [
      value.map((v) => ({ eq: v })),
      value.map((v) => ({ neq: v })),
      fc.array(value, { maxLength: 4 }).map((vs) => ({ in: vs })),
      fc.array(value, { maxLength: 4 }).map((vs) => ({ notIn: vs }))
    ]
    if (field.type !== "enum") {
      ops.push(fc.boolean().map((isNull) => ({ isNull })))
      ops.push(fc.tuple(fc.constantFrom("lt", "lte", "gt", "gte"), value).map(([op, v]) => ({ [op]: v })))
    } else if (field.nullable) ops.push(fc.boolean().map((isNull) => ({ isNull })))
    if (field.type === "string") {
      ops.push(
        fc
          .tuple(fc.constantFrom("contains", "startsWith", "endsWith"), value.chain(substringOf))
          .map(([op, v]) => ({ [op]: v }))
      )
    }
    return fc.oneof(...ops).map((operators) => ({ [name]: operators }))
  })
}

const filterFor = <E extends Fields.Entity>(
  entity: E,
  rowsOf: RowsOf,
  depth: number
): fc.Arbitrary<object> => {
  const table: Fields.Table<Fields.Rows[E]> = Fields.tables[entity]
  const leaf = predicateFor(table, rowsOf(entity))
  if (depth <= 0) return leaf
  const inner = () => filterFor(entity, rowsOf, depth - 1)
  const relations = Object.entries(table.relations).map(([name, relation]) => {
    const nested = filterFor(relation.entity, rowsOf, depth - 1)
    return relation.kind === "one"
      ? nested.map((f) => ({ [name]: f }))
      : fc.tuple(fc.constantFrom("some", "every", "none"), nested).map(([q, f]) => ({ [name]: { [q]: f } }))
  })
  return fc.oneof(
    { weight: 4, arbitrary: leaf },
    { weight: 1, arbitrary: fc.array(inner(), { maxLength: 3 }).map((filters) => ({ and: filters })) },
    { weight: 1, arbitrary: fc.array(inner(), { maxLength: 3 }).map((filters) => ({ or: filters })) },
    { weight: 1, arbitrary: inner().map((filter) => ({ not: filter })) },
    { weight: 1, arbitrary: fc.tuple(leaf, inner()).map(([a, b]) => ({ ...a, ...b })) },
    ...relations.map((arbitrary) => ({ weight: 1, arbitrary }))
  )
}

const orderByFor = (table: Fields.Table) => {
  const sortable = Object.keys(table.fields).filter((name) => table.fields[name]!.sort && name !== "id")
  return fc
    .uniqueArray(fc.constantFrom(...sortable), { minLength: 1, maxLength: OrderBy.maxKeys })
    .chain((names) =>
      fc.tuple(...names.map((name) => fc.constantFrom(...OrderBy.directions).map((d) => ({ [name]: d }))))
    )
}

// ---------------------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------------------

interface Case {
  readonly filter: object | undefined
  readonly orderBy: ReadonlyArray<object> | undefined
  readonly limit: number
  readonly scope: number
}

const ids = (rows: ReadonlyArray<{ readonly id: string }>) => rows.map((row) => row.id)

/**
 * List queries: for random datasets and random valid filter/orderBy pairs, the storage answers exactly as
 * the in-memory evaluator does, and walking pages forward with `after` and back with `before` (through
 * signed cursors) visits the oracle's sorted set once, with correct page flags at every step.
 */
export const queries = (
  name: string,
  make: MakeStorage,
  options: { readonly datasets?: number; readonly queriesPerDataset?: number } = {}
) =>
  describe(`${name} › storage: queries and pagination`, () => {
    const datasets = fc.sample(datasetArbitrary, { numRuns: options.datasets ?? 4, seed: 20261124 })
    for (const [n, plans] of datasets.entries()) {
      it.effect(
        `answers random filters and orders like the oracle, and pages both ways (dataset ${n + 1}, ${plans.length} builds)`,
        () =>
          Effect.gen(function* () {
            const storage = yield* Storage
            const { workspaces } = yield* populate(plans)
            const { builds, resolve, rowsOf } = yield* snapshot
            expect(builds.length).toBe(plans.length)
            const scopes = [
              Access.all,
              Access.workspaces([workspaces[0]!.id]),
              Access.workspaces([workspaces[1]!.id])
            ]
            const caseArbitrary: fc.Arbitrary<Case> = fc.record({
              filter: fc.option(filterFor("builds", rowsOf, 3), { nil: undefined }),
              orderBy: fc.option(orderByFor(Fields.builds), { nil: undefined }),
              limit: fc.constantFrom(1, 2, 3, 7, 100),
              scope: fc.nat(2)
            })
            const cases = fc.sample(caseArbitrary, { numRuns: options.queriesPerDataset ?? 100, seed: n + 1 })
            for (const testCase of cases) {
              const access = scopes[testCase.scope]!
              const params: Query.Params = {
                limit: String(testCase.limit),
                ...(testCase.filter === undefined ? {} : { filter: JSON.stringify(testCase.filter) }),
                ...(testCase.orderBy === undefined ? {} : { orderBy: JSON.stringify(testCase.orderBy) })
              }
              const label = JSON.stringify(params)
              const query = yield* Query.fromParams(Fields.builds, access, params)
              const expected = Evaluator.list(
                Fields.builds,
                builds,
                access,
                { ...query, limit: 100_000 },
                resolve
              )
              const expectedIds = ids(expected.rows)

              // Forward, page by page, through signed cursors.
              const forward: Array<string> = []
              let page = yield* storage.listBuilds(access, query)
              let previous = false
              for (let guard = 0; ; guard++) {
                expect(page.total, label).toBe(expectedIds.length)
                expect(page.hasPreviousPage, label).toBe(previous)
                forward.push(...ids(page.rows))
                expect(page.hasNextPage, label).toBe(forward.length < expectedIds.length)
                if (!page.hasNextPage || guard > 200) break
                const signed = yield* Query.toPage(Fields.builds, access, query, page)
                const next = yield* Query.fromParams(Fields.builds, access, {
                  ...params,
                  after: signed.pageInfo.endCursor!
                })
                page = yield* storage.listBuilds(access, next)
                previous = true
              }
              expect(forward, label).toEqual(expectedIds)

              // Backward from the end, with `before`.
              if (expectedIds.length > 0) {
                const last = expected.rows[expected.rows.length - 1]!
                const backward: Array<string> = [last.id]
                let cursor = Query.positionOf(Fields.builds, query.orderBy, last)
                for (let guard = 0; guard <= 200; guard++) {
                  const before = yield* storage.listBuilds(access, {
                    ...query,
                    cursor: { direction: "before", values: cursor }
                  })
                  expect(before.hasNextPage, label).toBe(true)
                  backward.unshift(...ids(before.rows))
                  expect(before.hasPreviousPage, label).toBe(backward.length < expectedIds.length)
                  if (!before.hasPreviousPage || before.rows.length === 0) break
                  cursor = Query.positionOf(Fields.builds, query.orderBy, before.rows[0]!)
                }
                expect(backward, label).toEqual(expectedIds)
              }
            }
          }).pipe(Effect.provide(make())),
        120_000
      )
    }

    it.effect("filters and orders the other entities like the oracle", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* populate(fc.sample(datasetArbitrary, { numRuns: 1, seed: 7 })[0]!)
        const other = yield* storage.createWorkspace({ name: "tokens" })
        for (const [i, role] of (["read", "write", "admin"] as const).entries()) {
          yield* storage.createToken({
            name: `t${i}`,
            workspaceIds: i === 2 ? "*" : [other.id],
            role,
            tokenHash: String(i).repeat(64),
            expiresAt: null
          })
        }
        const apps = (yield* storage.listApps(Access.all, Query.first(100))).rows
        const versions = (yield* storage.listAppVersions(Access.all, Query.first(100))).rows
        const workspaces = (yield* storage.listWorkspaces(Access.all, Query.first(100))).rows
        const tokens = (yield* storage.listTokens(Access.all, Query.first(100))).rows
        const byId: { readonly [E in Fields.Entity]?: ReadonlyMap<string, Fields.Rows[E]> } = {
          apps: new Map(apps.map((app) => [app.id, app]))
        }
        const resolve: Evaluator.Resolve = { one: (entity, id) => byId[entity]?.get(id), many: () => [] }
        const check = <Row extends { readonly id: string }, Name extends string>(
          table: Fields.Table<Row, Name | Query.Listed>,
          rows: ReadonlyArray<Row>,
          list: (
            access: Access.Access,
            query: Query.ListQuery<Name | Query.Listed>
          ) => Effect.Effect<Query.ListResult<Row>, unknown>,
          params: Query.Params,
          access: Access.Access = Access.all
        ) =>
          Effect.gen(function* () {
            const query = yield* Query.fromParams(table, access, params)
            const expected = Evaluator.list(table, rows, access, query, resolve)
            const actual = yield* list(access, query)
            expect(ids(actual.rows), JSON.stringify(params)).toEqual(ids(expected.rows))
            expect(actual.total).toBe(expected.total)
            expect(actual.hasNextPage).toBe(expected.hasNextPage)
          })
        yield* check(Fields.apps, apps, storage.listApps, {
          filter: '{"handle":{"startsWith":"web"}}',
          orderBy: '[{"handle":"desc"}]'
        })
        yield* check(Fields.apps, apps, storage.listApps, { filter: '{"kind":{"neq":"app"}}' })
        yield* check(Fields.appVersions, versions, storage.listAppVersions, {
          filter: '{"app":{"handle":{"in":["api","docs"]}},"commitSha":{"endsWith":"0"}}',
          orderBy: '[{"commitSha":"asc"},{"createdAt":"desc"}]',
          limit: "4"
        })
        yield* check(Fields.appVersions, versions, storage.listAppVersions, {
          filter: '{"sourceType":{"eq":"git"}}'
        })
        yield* check(Fields.workspaces, workspaces, storage.listWorkspaces, {
          orderBy: '[{"name":"asc"}]',
          limit: "2"
        })
        yield* check(Fields.tokens, tokens, storage.listTokens, {
          filter: '{"role":{"in":["read","admin"]}}'
        })
        yield* check(Fields.tokens, tokens, storage.listTokens, {}, Access.workspaces([other.id]))
        const scoped = yield* storage.listTokens(Access.workspaces([other.id]), Query.first(10))
        expect(scoped.rows.map((t) => t.role).sort()).toEqual(["read", "write"])
      }).pipe(Effect.provide(make()))
    )

    it.effect(
      "matches text patterns literally: wildcards, escapes and astral characters are just characters",
      () =>
        Effect.gen(function* () {
          const storage = yield* Storage
          yield* populate(fc.sample(datasetArbitrary, { numRuns: 1, seed: 3 })[0]!)
          const { builds, resolve } = yield* snapshot
          const patterns = [
            "%",
            "_",
            "*",
            "?",
            "[",
            "]",
            "\\",
            "a_b",
            "b%c",
            "y?[",
            "[z]",
            "😀",
            "ü",
            "bot:",
            "",
            "x*y",
            "' OR 1=1 --"
          ]
          for (const pattern of patterns) {
            for (const op of ["contains", "startsWith", "endsWith", "eq", "lt", "gte"]) {
              const params = { filter: JSON.stringify({ createdBy: { [op]: pattern } }) }
              const query = yield* Query.fromParams(Fields.builds, Access.all, params)
              const expected = Evaluator.list(
                Fields.builds,
                builds,
                Access.all,
                { ...query, limit: 1000 },
                resolve
              )
              const actual = yield* storage.listBuilds(Access.all, { ...query, limit: 1000 })
              expect(ids(actual.rows), JSON.stringify(params)).toEqual(ids(expected.rows))
            }
          }
        }).pipe(Effect.provide(make()))
    )

    it.effect("treats every predicate as two-valued, so not(eq) keeps the rows where the field is null", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* populate(fc.sample(datasetArbitrary, { numRuns: 1, seed: 11 })[0]!)
        const everything = (yield* storage.listBuilds(Access.all, Query.first(1000))).rows
        const withoutCreator = everything.filter((b) => b.createdBy === null).length
        const ada = everything.filter((b) => b.createdBy === "ada").length
        const run = (filter: object) =>
          Effect.flatMap(
            Query.fromParams(Fields.builds, Access.all, {
              filter: JSON.stringify(filter)
            }),
            (query) => Effect.map(storage.listBuilds(Access.all, query), (result) => result.total)
          )
        expect(yield* run({ not: { createdBy: { eq: "ada" } } })).toBe(everything.length - ada)
        expect(yield* run({ createdBy: { neq: "ada" } })).toBe(everything.length - ada)
        expect(yield* run({ createdBy: { isNull: true } })).toBe(withoutCreator)
        expect(yield* run({ not: { createdBy: { startsWith: "a" } } })).toBe(
          everything.filter((b) => !(b.createdBy ?? "").startsWith("a") || b.createdBy === null).length
        )
        expect(yield* run({ or: [] })).toBe(0)
        expect(yield* run({ and: [] })).toBe(everything.length)
      }).pipe(Effect.provide(make()))
    )
  })
