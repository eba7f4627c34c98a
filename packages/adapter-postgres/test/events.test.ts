import { expect, it } from "@effect/vitest"
import { Access, type Change, Event } from "@kiln/core"
import { Effect, Queue, Schema, Stream } from "effect"
import pg from "pg"
import { describe } from "vitest"
import { clientConfig } from "../src/internal/connection.ts"
import * as PgTesting from "../src/testing.ts"
import { freshSchema, queue, seed, sql, storageOn } from "./fixtures.ts"

/** A connection of its own on the schema, closed with the scope. */
const connect = (schema: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new pg.Client(clientConfig({ connectionString: PgTesting.databaseUrl(), schema }))
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.end())
  )

const query = (client: pg.Client, text: string, values: ReadonlyArray<unknown> = []) =>
  Effect.promise(() => client.query(text, [...values]))

const cursor = Schema.decodeSync(Event.Cursor)

describe("postgres events", () => {
  it.live("never hands out a cursor that an event still to commit would sort before", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      const storage = yield* storageOn(schema)
      const { workspace, versions } = yield* seed(storage)
      const read = (after: Event.Cursor | null) =>
        storage.readEvents(Access.all, { after, types: null, limit: 100 })

      // A transaction takes its id and writes an event, and stays open while a later one commits.
      const slow = yield* connect(schema)
      yield* query(slow, "BEGIN")
      yield* query(
        slow,
        `INSERT INTO events (id, workspace_id, type, subject, "timestamp", data)
         VALUES ('msg_00000000000000000000000001', $1, 'build.queued', 'slow', 0, '{}')`,
        [workspace.id]
      )
      const [fast] = yield* queue(storage, versions[0]!)
      const fastCommitted = yield* sql(
        `SELECT 1 FROM ${pg.escapeIdentifier(schema)}.events WHERE subject = $1`,
        [fast!.id]
      )
      expect(fastCommitted.length).toBe(1)

      // The later transaction's event is committed, but sorts after the open one's: it is not shown yet.
      const first = yield* read(null)
      expect(first.map((event) => event.subject)).not.toContain(fast!.id)
      expect(first.map((event) => event.subject)).not.toContain("slow")
      const resumeFrom = first.at(-1)?.cursor ?? null

      yield* query(slow, "COMMIT")
      // Resumed from the cursor already handed out, the reader gets both, in the order they sort.
      const rest: Array<Event.Stored> = []
      let after = resumeFrom
      while (!rest.some((event) => event.subject === fast!.id)) {
        const page = yield* read(after)
        rest.push(...page)
        after = page.at(-1)?.cursor ?? after
        if (page.length === 0) yield* Effect.sleep("20 millis")
      }
      expect(rest.map((event) => event.subject)).toEqual(["slow", fast!.id])
      const whole = yield* read(null)
      expect([...first, ...rest]).toEqual(whole)
    }).pipe(Effect.scoped)
  )

  it.live(
    "reads a cursor of the other form by its leading number, and one past every position as the end",
    () =>
      Effect.gen(function* () {
        const schema = yield* freshSchema
        const storage = yield* storageOn(schema)
        const { versions } = yield* seed(storage)
        yield* queue(storage, versions[0]!, 2)
        const read = (after: string) =>
          storage.readEvents(Access.all, { after: cursor(after), types: null, limit: 100 })
        const whole = yield* storage.readEvents(Access.all, { after: null, types: null, limit: 100 })
        expect(whole.length).toBe(3)
        expect(whole.every((event) => /^[0-9]+\.[0-9]+$/.test(event.cursor))).toBe(true)
        expect(yield* read("0")).toEqual(whole)
        const xid = whole[1]!.cursor.split(".")[0]!
        expect(yield* read(xid)).toEqual(whole.slice(1))
        expect(yield* read("99999999999999999999.99999999999999999999")).toEqual([])
        expect(yield* read("99999999999999999999")).toEqual([])
      }).pipe(Effect.scoped)
  )

  it.live("rolls a claim back with its event when the event cannot be stored", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      const storage = yield* storageOn(schema)
      const { versions } = yield* seed(storage)
      const [queued] = yield* queue(storage, versions[0]!)
      yield* sql(
        `ALTER TABLE ${pg.escapeIdentifier(schema)}.events ADD CONSTRAINT refuse_running CHECK (type <> 'build.running')`
      )
      const failed = yield* Effect.flip(storage.claimNext({ owner: "engine", leaseMs: 60_000, max: 1 }))
      expect(failed._tag).toBe("StorageError")
      const build = yield* storage.getBuild(Access.all, queued!.id)
      expect(build).toMatchObject({ phase: "queued", owner: null, attempt: 0 })
    }).pipe(Effect.scoped)
  )

  it.live("wakes another storage's subscribers when events are written", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      const listener = yield* storageOn(schema)
      const writer = yield* storageOn(schema)
      const heard = yield* Queue.unbounded<Change.Change>()
      yield* Effect.forkScoped(
        Stream.runForEach(yield* listener.changes, (change) => Queue.offer(heard, change))
      )
      const nextEventsWritten = Effect.gen(function* () {
        while ((yield* Queue.take(heard))._tag !== "EventsWritten") {}
      }).pipe(Effect.timeout("10 seconds"))
      // The version created ready announces itself; then a build does.
      const { versions } = yield* seed(writer)
      yield* nextEventsWritten
      yield* queue(writer, versions[0]!)
      yield* nextEventsWritten
    }).pipe(Effect.scoped)
  )
})
