import { expect, it } from "@effect/vitest"
import { Access, type Build, type LogLine } from "@kiln/core"
import { Cause, DateTime, Effect, Exit, Option } from "effect"
import pg from "pg"
import { describe } from "vitest"
import { freshSchema, queue, seed, sql, storageOn } from "./fixtures.ts"

const at = DateTime.makeUnsafe(1_700_000_000_000)

const lines = (from: number, count: number): Array<LogLine.LogLine> =>
  Array.from({ length: count }, (_, i) => ({
    seq: from + i,
    ts: at,
    stream: "stdout" as const,
    step: null,
    text: `line ${from + i}`
  }))

const fenceOf = (build: Build.Build) => ({ owner: build.owner!, attempt: build.attempt })

/** One build claimed by an engine's storage, and another process's storage on the same schema. */
const claimedWithPeer = (leaseMs: number) =>
  Effect.gen(function* () {
    const schema = yield* freshSchema
    const engine = yield* storageOn(schema)
    const peer = yield* storageOn(schema)
    const { versions } = yield* seed(engine)
    yield* queue(engine, versions[0]!)
    const [build] = yield* engine.claimNext({ owner: "engine", leaseMs, max: 1 })
    return { schema, engine, peer, build: build!, fence: fenceOf(build!) }
  })

const storedCancelReason = (schema: string, id: string) =>
  Effect.map(
    sql<{ cancel_reason: string }>(
      `SELECT cancel_reason FROM ${pg.escapeIdentifier(schema)}.builds WHERE id = $1`,
      [id]
    ),
    ([row]) => row!.cancel_reason
  )

/** Counts the statements of this name that every `pg` client sends while the scope is open. */
const counting = (name: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const sent = { count: 0 }
      const query = pg.Client.prototype.query
      const counted = function (this: pg.Client, ...args: Array<unknown>) {
        const [config] = args as [{ readonly name?: string } | undefined]
        if (config?.name === name) sent.count++
        return (query as (...args: Array<unknown>) => unknown).apply(this, args)
      }
      pg.Client.prototype.query = counted as typeof query
      return { sent, restore: () => (pg.Client.prototype.query = query) }
    }),
    ({ restore }) => Effect.sync(restore)
  ).pipe(Effect.map(({ sent }) => sent))

describe("postgres batched writes", () => {
  it.live("renews 60 leases at once in a few statements, each fenced on its own", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      const storage = yield* storageOn(schema)
      const { versions } = yield* seed(storage)
      yield* queue(storage, versions[0]!, 60)
      const claimed = yield* storage.claimNext({ owner: "engine", leaseMs: 5_000, max: 60 })
      expect(claimed.length).toBe(60)
      const sent = yield* counting("kiln_heartbeat_batch")
      const renewed = yield* Effect.forEach(
        claimed,
        (build) => storage.heartbeat(build.id, fenceOf(build), 600_000),
        { concurrency: "unbounded" }
      )
      expect(sent.count).toBeGreaterThan(0)
      expect(sent.count).toBeLessThanOrEqual(5)
      renewed.forEach((build, i) => {
        expect(build.id).toBe(claimed[i]!.id)
        expect(DateTime.toEpochMillis(build.leaseExpiresAt!)).toBeGreaterThan(
          DateTime.toEpochMillis(claimed[i]!.leaseExpiresAt!) + 500_000
        )
      })
      // A stale fence in a batch is refused on its own; the rest of the batch is renewed.
      const exits = yield* Effect.forEach(
        claimed.slice(0, 10),
        (build, i) =>
          Effect.exit(
            storage.heartbeat(
              build.id,
              i === 3 ? { owner: "impostor", attempt: build.attempt } : fenceOf(build),
              600_000
            )
          ),
        { concurrency: "unbounded" }
      )
      expect(exits.map((exit) => (Exit.isSuccess(exit) ? "renewed" : "refused"))).toEqual(
        claimed.slice(0, 10).map((_, i) => (i === 3 ? "refused" : "renewed"))
      )
      const refused = exits[3]!
      expect(
        Exit.isFailure(refused) && Cause.findErrorOption(refused.cause).pipe(Option.map((e) => e._tag))
      ).toEqual(Option.some("LeaseLost"))
    }).pipe(Effect.scoped)
  )

  it.live(
    "drives 60 builds at once through start, logs, and last lines with success, storing every line and state",
    () =>
      Effect.gen(function* () {
        const schema = yield* freshSchema
        const storage = yield* storageOn(schema)
        const { versions } = yield* seed(storage)
        yield* queue(storage, versions[0]!, 60)
        const claimed = yield* storage.claimNext({ owner: "engine", leaseMs: 60_000, max: 60 })
        expect(claimed.length).toBe(60)
        yield* Effect.forEach(
          claimed,
          (build) =>
            Effect.gen(function* () {
              const fence = fenceOf(build)
              yield* Effect.all(
                [
                  storage.appendLogs(build.id, fence, lines(1, 3)),
                  storage.transition(build.id, { _tag: "Started", at, ...fence })
                ],
                { concurrency: 2 }
              )
              yield* storage.appendAndTransition(build.id, fence, lines(4, 2), [
                { _tag: "Succeeded", at, ...fence, imageTag: null, imageDigest: null }
              ])
            }),
          { concurrency: "unbounded", discard: true }
        )
        const stored = yield* sql<{ id: string; status: string; lines: string; last_seq: string }>(
          `SELECT b.id, b.status, (SELECT count(*) FROM ${pg.escapeIdentifier(schema)}.log_lines l WHERE l.build_id = b.id) AS lines,
           s.last_seq FROM ${pg.escapeIdentifier(schema)}.builds b
         JOIN ${pg.escapeIdentifier(schema)}.log_stats s ON s.build_id = b.id`
        )
        expect(stored.length).toBe(60)
        for (const row of stored) {
          expect(row).toMatchObject({ status: "completed" })
          expect(Number(row.lines)).toBe(5)
          expect(Number(row.last_seq)).toBe(5)
        }
        const page = yield* storage.readLogs(Access.all, claimed[7]!.id, 0, 10)
        expect(page.lines.map((line) => line.text)).toEqual(lines(1, 5).map((line) => line.text))
        // Each build's events, stored with the batched writes that made them, in the order they happened.
        const events = yield* storage.readEvents(Access.all, { after: null, types: null, limit: 1000 })
        for (const build of claimed) {
          expect(events.filter((event) => event.subject === build.id).map((event) => event.type)).toEqual([
            "build.queued",
            "build.running",
            "build.started",
            "build.finished"
          ])
        }
      }).pipe(Effect.scoped)
  )

  it.live("keeps a cancel request another process made after this one last saw the build", () =>
    Effect.gen(function* () {
      const { schema, engine, peer, build, fence } = yield* claimedWithPeer(60_000)
      yield* peer.requestCancel(Access.all, build.id, "not needed")
      // The engine's view still has no cancel request: its compare-and-set misses, the locking path
      // reads the request and keeps it.
      const started = yield* engine.transition(build.id, { _tag: "Started", at, ...fence })
      expect(started.cancelReason).toBe("not needed")
      expect(started.cancelRequestedAt).not.toBeNull()
      const stopped = yield* engine.transition(build.id, { _tag: "Stopped", at, ...fence })
      expect(stopped).toMatchObject({ status: "cancelled", cancelReason: "not needed" })
      expect(yield* storedCancelReason(schema, build.id)).toBe("not needed")
    }).pipe(Effect.scoped)
  )

  it.live(
    "stores the last lines and keeps a cancel request that came after this storage last saw the build",
    () =>
      Effect.gen(function* () {
        const { schema, engine, peer, build, fence } = yield* claimedWithPeer(60_000)
        yield* engine.transition(build.id, { _tag: "Started", at, ...fence })
        yield* peer.requestCancel(Access.all, build.id, "not needed")
        // The engine's view has no cancel request: its compare-and-set misses, and the lines and the final
        // state are written in turn, keeping the request.
        const succeeded = yield* engine.appendAndTransition(build.id, fence, lines(1, 2), [
          { _tag: "Succeeded", at, ...fence, imageTag: null, imageDigest: null }
        ])
        expect(succeeded).toMatchObject({ status: "completed", cancelReason: "not needed" })
        expect(yield* storedCancelReason(schema, build.id)).toBe("not needed")
        const page = yield* peer.readLogs(Access.all, build.id, 0, 10)
        expect(page.lines.map((line) => line.seq)).toEqual([1, 2])
      }).pipe(Effect.scoped)
  )

  it.live("fences out appends and transitions once a peer has reaped the build", () =>
    Effect.gen(function* () {
      const { schema, engine, peer, build, fence } = yield* claimedWithPeer(1)
      yield* Effect.sleep("20 millis")
      expect((yield* peer.reapExpired()).map((b) => b.id)).toEqual([build.id])
      expect((yield* Effect.flip(engine.appendLogs(build.id, fence, lines(1, 2))))._tag).toBe("LeaseLost")
      const failed = yield* Effect.flip(engine.transition(build.id, { _tag: "Started", at, ...fence }))
      expect(failed._tag).toBe("LeaseLost")
      const last = yield* Effect.flip(
        engine.appendAndTransition(build.id, fence, lines(1, 1), [{ _tag: "Stopped", at, ...fence }])
      )
      expect(last._tag).toBe("LeaseLost")
      // Only the reaper's line: none of the engine's.
      const stored = yield* sql<{ stream: string }>(
        `SELECT stream FROM ${pg.escapeIdentifier(schema)}.log_lines WHERE build_id = $1`,
        [build.id]
      )
      expect(stored).toEqual([{ stream: "system" }])
      // The batched writes that missed stored none of their events either.
      const events = yield* peer.readEvents(Access.all, { after: null, types: null, limit: 100 })
      expect(events.filter((event) => event.subject === build.id).map((event) => event.type)).toEqual([
        "build.queued",
        "build.running",
        "build.finished"
      ])
    }).pipe(Effect.scoped)
  )

  it.live("stores a retried append once, and takes a gap as an error, after appends it batched", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      const storage = yield* storageOn(schema)
      const { versions } = yield* seed(storage)
      yield* queue(storage, versions[0]!)
      const [build] = yield* storage.claimNext({ owner: "engine", leaseMs: 60_000, max: 1 })
      const fence = fenceOf(build!)
      yield* storage.appendLogs(build!.id, fence, lines(1, 3))
      yield* storage.appendLogs(build!.id, fence, lines(2, 4))
      expect((yield* Effect.flip(storage.appendLogs(build!.id, fence, lines(9, 1))))._tag).toBe(
        "LogSequenceGap"
      )
      const page = yield* storage.readLogs(Access.all, build!.id, 0, 100)
      expect(page.lines.map((line) => line.seq)).toEqual([1, 2, 3, 4, 5])
    }).pipe(Effect.scoped)
  )
})
