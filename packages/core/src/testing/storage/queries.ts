import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import * as Access from "../../Access.ts"
import * as Evaluator from "../../Evaluator.ts"
import * as Fields from "../../Fields.ts"
import * as Query from "../../Query.ts"
import { Storage } from "../../Storage.ts"
import { datasetArbitrary, populate, snapshot } from "./datasets.ts"
import type { MakeStorage } from "./fixtures.ts"
import { filterFor, orderByFor } from "./randomQueries.ts"

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
