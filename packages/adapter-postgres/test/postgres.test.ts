import { expect, it } from "@effect/vitest"
import { Access, Fields, Query, Storage } from "@kiln/core"
import { SortIndexes } from "@kiln/core/testing"
import { DateTime, Effect } from "effect"
import pg from "pg"
import { describe } from "vitest"
import { statements } from "../src/internal/statements.ts"
import * as PgStorage from "../src/PgStorage.ts"
import * as PgTesting from "../src/testing.ts"
import { freshSchema, queue, seed, sql, storageOn } from "./fixtures.ts"

/**
 * The query plan of a statement on `schema`, with sequential scans priced out of reach, and whatever else
 * `off` names (`bitmapscan`, `sort`) too.
 */
const plan = (
  schema: string,
  text: string,
  values: ReadonlyArray<unknown>,
  off: ReadonlyArray<string> = []
) =>
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: PgTesting.databaseUrl() })
    await client.connect()
    try {
      await client.query(
        [
          `SET search_path = ${pg.escapeIdentifier(schema)}`,
          ...["seqscan", ...off].map((kind) => `SET enable_${kind} = off`)
        ].join("; ")
      )
      const { rows } = await client.query<{ "QUERY PLAN": string }>(`EXPLAIN ${text}`, [...values])
      return rows.map((row) => row["QUERY PLAN"]).join("\n")
    } finally {
      await client.end()
    }
  })

describe("postgres specifics", () => {
  it.live("serves the claim, the caps and the reaper from their partial indexes", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      yield* storageOn(schema)
      expect(
        yield* plan(schema, statements.claimOldest.text, ["engine", 1000, "channel", "source", 10, []])
      ).toContain("builds_queued")
      expect(yield* plan(schema, statements.queuedOldest.text, [10])).toContain("builds_queued")
      expect(yield* plan(schema, statements.activeCounts.text, [])).toContain("builds_active")
      expect(yield* plan(schema, statements.expiredLeases.text, [0])).toContain("builds_active_by_lease")
    }).pipe(Effect.scoped)
  )

  it.live(
    "reads a page ordered on a sort-indexed field from its indexes, in every direction and nulls order",
    () =>
      Effect.gen(function* () {
        const schema = yield* freshSchema
        yield* storageOn(schema)
        const pages = SortIndexes.pages("postgres")
        expect(pages.length).toBeGreaterThan(20)
        for (const { label, statement } of pages) {
          // On an empty table a sort of what a bitmap scan found is priced below an ordered index scan: both
          // are priced out, so the plan shows whether an index can give the order at all.
          const text = yield* plan(schema, statement.text, statement.params, ["bitmapscan", "sort"])
          const inFlight = /"builds" (t\d+) WHERE (?:(?!UNION).)*\1\."phase" IN \(/.exec(statement.text)?.[1]
          expect(inFlight, statement.text).toBeDefined()
          // The plan's nodes, each with what it reads from.
          const nodes = text
            .split("\n")
            .map((line) => line.replace(/^\s*(->\s*)?/, ""))
            .filter((line) => /^[A-Z]/.test(line) && !/^[A-Za-z ]+:/.test(line))
          nodes.forEach((node, i) => {
            // Every read of the table goes through one of its own indexes, not the primary key.
            if (node.includes(" on builds ")) {
              expect(node, `${label}:\n${text}`).toMatch(/^Index Scan.* using builds_(?!pkey)/)
            }
            // Only the merge of the parts sorts (at most 101 rows from each), and the part of the builds in
            // flight, which are few; never a read of the other builds.
            if (node.startsWith("Sort")) {
              expect(nodes[i + 1], `${label}:\n${text}`).toMatch(
                new RegExp(`^(Limit|Append|Index Scan using \\w+ on builds ${inFlight}\\b)`)
              )
            }
          })
        }
      }).pipe(Effect.scoped)
  )

  it.live("reads a shorthand filter's page, newest first, from an index with the field and the order", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      yield* storageOn(schema)
      for (const { label, index, statement } of SortIndexes.shorthandPages("postgres")) {
        const text = yield* plan(schema, statement.text, statement.params, ["bitmapscan", "sort"])
        expect(text, label).toContain(`Index Scan Backward using ${index} on builds`)
      }
    }).pipe(Effect.scoped)
  )

  it.live("keeps the builds' counts when another connection, with its own search_path, changes them", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      const storage = yield* storageOn(schema)
      const { versions } = yield* seed(storage)
      const [first, second] = yield* queue(storage, versions[0]!, 3)
      const builds = `${pg.escapeIdentifier(schema)}.builds`
      // An operator's session: the default search_path, which does not name Kiln's schema.
      yield* sql(`DELETE FROM ${builds} WHERE id = $1`, [first!.id])
      yield* sql(
        `UPDATE ${builds} SET status = 'skipped', phase = 'stopped', outcome = 'skipped' WHERE id = $1`,
        [second!.id]
      )
      const total = (status: string) =>
        Effect.flatMap(Query.fromParams(Fields.builds, Access.all, { status }), (query) =>
          Effect.map(storage.listBuilds(Access.all, query), (result) => result.total)
        )
      expect(yield* total("pending")).toBe(1)
      expect(yield* total("skipped")).toBe(1)
    }).pipe(Effect.scoped)
  )

  it.live("compares the query language's numbers with any finite number", () =>
    Effect.gen(function* () {
      const storage = yield* storageOn(yield* freshSchema)
      const { versions } = yield* seed(storage)
      yield* queue(storage, versions[0]!, 3)
      yield* storage.claimNext({ owner: "engine", leaseMs: 60_000, max: 1 })
      const total = (filter: object) =>
        Effect.flatMap(
          Query.fromParams(Fields.builds, Access.all, {
            filter: JSON.stringify(filter)
          }),
          (query) => Effect.map(storage.listBuilds(Access.all, query), (result) => result.total)
        )
      expect(yield* total({ attempt: { gt: 0.5 } })).toBe(1)
      expect(yield* total({ sequenceNumber: { eq: 1.5 } })).toBe(0)
      expect(yield* total({ sequenceNumber: { lt: 1e300, gte: -1e300 } })).toBe(3)
    }).pipe(Effect.scoped)
  )

  it.live("stores a log line holding NUL, which PostgreSQL text cannot, with U+FFFD in its place", () =>
    Effect.gen(function* () {
      const storage = yield* storageOn(yield* freshSchema)
      const { versions } = yield* seed(storage)
      yield* queue(storage, versions[0]!)
      const [build] = yield* storage.claimNext({ owner: "engine", leaseMs: 60_000, max: 1 })
      const ts = DateTime.makeUnsafe(Date.now())
      yield* storage.appendLogs(build!.id, { owner: "engine", attempt: 1 }, [
        { seq: 1, ts, stream: "stdout", step: null, text: "a\u0000b" }
      ])
      const read = yield* storage.readLogs(Access.all, build!.id, 0, 10)
      expect(read.lines.map((line) => line.text)).toEqual(["a\uFFFDb"])
    }).pipe(Effect.scoped)
  )

  it.live(
    "fails to start as Unavailable when the server cannot be reached, without naming the password",
    () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          Storage.Storage.use((storage) => storage.createWorkspace({ name: "w" })).pipe(
            Effect.provide(PgStorage.layer({ connectionString: "postgres://kiln:s3cret@127.0.0.1:1/kiln" }))
          )
        )
        expect(error).toMatchObject({ _tag: "StorageError", reason: "Unavailable" })
        expect(error.message).not.toContain("s3cret")
      })
  )
})
