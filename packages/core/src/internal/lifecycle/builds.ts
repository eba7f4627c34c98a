/**
 * A build's own lifecycle operations: creation with its sequence number and idempotency, the fenced
 * transitions of its owner, cancel requests, lease renewals and steps. Each reads the build under the
 * transaction's lock, applies `BuildState.transition`, and writes back with compare-and-set — or, for an
 * owner write planned from what this process knows, takes the driver's `writeKnown` when it has one.
 */
import { DateTime, Effect, Result } from "effect"
import * as Access from "../../Access.ts"
import type { AppVersion } from "../../AppVersion.ts"
import * as Batcher from "../../Batcher.ts"
import * as Build from "../../Build.ts"
import * as BuildState from "../../BuildState.ts"
import { buildChanged, type Change } from "../../Change.ts"
import * as Event from "../../Event.ts"
import * as Id from "../../Id.ts"
import type { LogLine } from "../../LogLine.ts"
import type { Transaction } from "../../StorageDriver.ts"
import { Conflict, NotFound, type StorageError } from "../../StorageError.ts"
import { buildEvents, eventsWritten, insertEvents, type Lifecycle, now, writeState } from "./context.ts"
import { appendInTransaction, lockFenced, stopWithLine, storable } from "./logs.ts"

const lockExisting = (tx: Transaction, id: Id.BuildId): Effect.Effect<Build.Build, NotFound | StorageError> =>
  Effect.flatMap(tx.lockBuild(id), (build) =>
    build === undefined ? Effect.fail(NotFound.of("build", id)) : Effect.succeed(build)
  )

/** Applies events in turn to a build; the last state is written once. */
const applyAll = (build: Build.Build, events: ReadonlyArray<BuildState.BuildEvent>) => {
  let after: Result.Result<Build.Build, BuildState.InvalidTransition | BuildState.LeaseLost> =
    Result.succeed(build)
  for (const event of events) after = Result.flatMap(after, (state) => BuildState.transition(state, event))
  return after
}

/** Tracks and announces a state this process wrote (and the events written with it). */
const changed = (lifecycle: Lifecycle, build: Build.Build, also: ReadonlyArray<Change> = []) =>
  Effect.sync(() => lifecycle.known.track(build)).pipe(
    Effect.andThen(lifecycle.publish([...also, buildChanged(build), eventsWritten])),
    Effect.as(build)
  )

/** One call of `createBuild`, its id and time taken when it was made. */
interface Creation {
  readonly access: Access.Access
  readonly input: Build.NewBuild
  readonly id: Id.BuildId
  readonly at: DateTime.Utc
}

/** What a creation answers: the build, new or the one its key or event already made, or a refusal. */
type Answer = Result.Result<Build.Build, NotFound | Conflict>

/**
 * What a creation finds before it takes a number: a refusal, the build that already answers it, or the
 * version of a new build.
 */
type Checked = Result.Result<
  | { readonly _tag: "Existing"; readonly build: Build.Build }
  | { readonly _tag: "New"; readonly version: AppVersion },
  NotFound | Conflict
>

const check = (
  tx: Transaction,
  { access, input }: Creation,
  version: AppVersion | undefined
): Effect.Effect<Checked, StorageError> =>
  Effect.gen(function* () {
    const key = input.idempotencyKey ?? null
    const sourceEventId = input.sourceEventId ?? null
    if (version === undefined || !Access.allows(access, version.workspaceId)) {
      return yield* NotFound.of("app version", input.appVersionId)
    }
    if (version.status !== "ready") {
      return yield* new Conflict({ message: `app version ${version.id} is ${version.status}, not ready` })
    }
    if (sourceEventId !== null && (yield* tx.sourceEventWorkspace(sourceEventId)) !== version.workspaceId) {
      return yield* NotFound.of("source event", sourceEventId)
    }
    // With neither a key nor an event, no build can match: no lookup, one round trip less on SQL.
    const existing =
      key === null && sourceEventId === null
        ? undefined
        : yield* tx.existingBuild({
            workspaceId: version.workspaceId,
            idempotencyKey: key,
            appId: version.appId,
            sourceEventId
          })
    if (existing !== undefined) {
      // A key names one request: reusing it for another version is a mistake, not a retry.
      if (key !== null && existing.idempotencyKey === key && existing.appVersionId !== version.id) {
        return yield* new Conflict({ message: "the idempotency key was used for a different app version" })
      }
      return { _tag: "Existing", build: existing } as const
    }
    return { _tag: "New", version } as const
  }).pipe(
    // A refusal answers its own creation; a storage error fails the whole transaction.
    Effect.map((found): Checked => Result.succeed(found)),
    Effect.catchTags({
      StorageNotFound: (error) => Effect.succeed<Checked>(Result.fail(error)),
      StorageConflict: (error) => Effect.succeed<Checked>(Result.fail(error))
    })
  )

/**
 * Creates in `tx`, in the order given: the versions read (and their apps locked) in one call, numbers
 * taken in one call, the new builds and their events inserted in one call each. Answers each creation
 * and the builds that are new; a refusal leaves the others be.
 */
const createAll = (tx: Transaction, creations: ReadonlyArray<Creation>) =>
  Effect.gen(function* () {
    const ids = [...new Set(creations.map(({ input }) => input.appVersionId))]
    const found = yield* tx.versionsToBuild(ids)
    const versions = new Map(ids.map((id, n) => [id, found[n]]))
    const checked: Array<Checked> = []
    for (const creation of creations) {
      checked.push(yield* check(tx, creation, versions.get(creation.input.appVersionId)))
    }
    const counts = new Map<Id.AppId, number>()
    for (const one of checked) {
      if (Result.isSuccess(one) && one.success._tag === "New") {
        const { appId } = one.success.version
        counts.set(appId, (counts.get(appId) ?? 0) + 1)
      }
    }
    const takes = [...counts].map(([appId, count]) => ({ appId, count }))
    const firsts = takes.length === 0 ? [] : yield* tx.nextSequences(takes)
    const next = new Map(takes.map(({ appId }, n) => [appId, firsts[n]!]))
    const fresh: Array<Build.Build> = []
    const answers = checked.map((one, n): Answer => {
      if (Result.isFailure(one)) return Result.fail(one.failure)
      if (one.success._tag === "Existing") return Result.succeed(one.success.build)
      const { version } = one.success
      const sequence = next.get(version.appId)!
      next.set(version.appId, sequence + 1)
      const { input, id, at } = creations[n]!
      const build = Build.make(id, version, sequence, input, at)
      fresh.push(build)
      return Result.succeed(build)
    })
    if (fresh.length > 0) {
      yield* tx.insertBuilds(fresh)
      const events = yield* Effect.forEach(fresh, (build) => buildEvents(undefined, build))
      yield* insertEvents(tx, events.flat())
    }
    return { answers, fresh: new Set(fresh) }
  })

/** Creations in one transaction at most, so that a batch holds its apps' locks only briefly. */
const maxBatch = 32

/**
 * `createBuild`, for the life of the scope. Creations with neither an idempotency key nor a source event —
 * what triggers and most callers make — that arrive while a batch is being written go together in the
 * next one: one transaction and a few statements for all of them, where each alone costs several round
 * trips on SQL. Each keeps its own answer; one refused (its version missing or not ready) leaves the
 * others be. A batch that fails sends its calls one at a time, which reports each error properly. Keyed
 * creations check what earlier ones inserted, so they always go one at a time.
 */
export const makeCreateBuild = (lifecycle: Lifecycle) =>
  Effect.gen(function* () {
    const announce = (answer: Answer, fresh: ReadonlySet<Build.Build>) =>
      Effect.flatMap(Effect.fromResult(answer), (build) =>
        fresh.has(build) ? changed(lifecycle, build) : Effect.succeed(build)
      )
    const single = (creation: Creation) =>
      Effect.flatMap(
        lifecycle.driver.transaction((tx) => createAll(tx, [creation])),
        ({ answers, fresh }) => announce(answers[0]!, fresh)
      )
    const batched = yield* Batcher.make<Creation, readonly [Answer, ReadonlySet<Build.Build>] | undefined>({
      max: maxBatch,
      workers: 1,
      failed: undefined,
      run: (batch) =>
        Effect.map(
          lifecycle.driver.transaction((tx) => createAll(tx, batch)),
          ({ answers, fresh }) => answers.map((answer) => [answer, fresh] as const)
        )
    })
    return Effect.fnUntraced(function* (access: Access.Access, input: Build.NewBuild) {
      const creation: Creation = { access, input, id: yield* Id.generate("bld"), at: yield* now }
      if ((input.idempotencyKey ?? null) !== null || (input.sourceEventId ?? null) !== null) {
        return yield* single(creation)
      }
      const answered = yield* batched(creation)
      return answered === undefined ? yield* single(creation) : yield* announce(...answered)
    })
  })

/**
 * A transition applied to the build as read under its lock: always the authoritative answer. A build given
 * back unstarted (`Release`) that stops instead, because a cancel was requested while it was held, gets
 * its log's cancel line in the same transaction, as the reaper's line does for a lost build: decided on the
 * build as stored, so a request the engine has not heard of yet is not missed.
 */
const transitionLocked = (lifecycle: Lifecycle, id: Id.BuildId, event: BuildState.BuildEvent) =>
  Effect.flatMap(
    lifecycle.driver.transaction((tx) =>
      Effect.gen(function* () {
        const build = yield* lockExisting(tx, id)
        const next = yield* Effect.fromResult(BuildState.transition(build, event))
        if (event._tag !== "Release" || next.phase !== "stopped")
          return { build: yield* writeState(lifecycle, tx, build, next), appended: undefined }
        return yield* stopWithLine(
          lifecycle,
          tx,
          build,
          next,
          (seq) => BuildState.releasedLine(next, seq),
          yield* tx.now
        )
      })
    ),
    ({ build, appended }) => {
      if (appended !== undefined) lifecycle.known.trackLog(build, appended.stats)
      return changed(lifecycle, build, appended === undefined ? [] : [appended.change])
    }
  ).pipe(
    // The line continues the log as this transaction reads it: it cannot miss.
    Effect.catchTag("LogSequenceGap", Effect.die)
  )

export const transition = (lifecycle: Lifecycle) => (id: Id.BuildId, event: BuildState.BuildEvent) =>
  Effect.suspend(() => {
    // A give-back is rare, and whether it stops the build is only known under the lock.
    if (event._tag === "Release") return transitionLocked(lifecycle, id, event)
    const writeKnown = lifecycle.driver.fastPaths?.writeKnown
    const state = writeKnown && lifecycle.known.planTransition(id, [event])
    if (!writeKnown || state === undefined) return transitionLocked(lifecycle, id, event)
    return buildEvents(state.before, state.after).pipe(
      Effect.flatMap((events) =>
        writeKnown({ id, state, events, changes: [buildChanged(state.after), eventsWritten] })
      ),
      Effect.flatMap((done) =>
        done ? changed(lifecycle, state.after) : transitionLocked(lifecycle, id, event)
      )
    )
  })

/**
 * An owner's lines and then state changes as one write: from what this process knows when the driver
 * can store that, else in one transaction — the lines appended (fenced) and then every event applied.
 */
export const appendAndTransition =
  (lifecycle: Lifecycle) =>
  (
    id: Id.BuildId,
    fence: BuildState.Fence,
    batch: ReadonlyArray<LogLine>,
    events: readonly [BuildState.BuildEvent, ...Array<BuildState.BuildEvent>]
  ) =>
    Effect.suspend(() => {
      const { driver, known } = lifecycle
      const lines = batch.map(storable)
      const inTransaction = Effect.gen(function* () {
        const at = yield* now
        const { build, appended } = yield* driver.transaction((tx) =>
          Effect.gen(function* () {
            const { build: held, appended } =
              lines.length === 0
                ? { build: yield* lockExisting(tx, id), appended: undefined }
                : yield* appendInTransaction(lifecycle, tx, id, fence, lines, at)
            const after = yield* Effect.fromResult(applyAll(held, events))
            return { build: yield* writeState(lifecycle, tx, held, after), appended }
          })
        )
        if (appended !== undefined) known.trackLog(build, appended.stats)
        return yield* changed(lifecycle, build, appended === undefined ? [] : [appended.change])
      })
      const writeKnown = driver.fastPaths?.writeKnown
      const state = writeKnown && known.planTransition(id, events)
      const planned =
        writeKnown && lines.length > 0 ? known.planAppend(id, fence, lines, lifecycle.budget) : undefined
      if (!writeKnown || state === undefined || (lines.length > 0 && planned === undefined))
        return inTransaction
      const changes = [
        ...(planned === undefined ? [] : [planned.change]),
        buildChanged(state.after),
        eventsWritten
      ]
      const write = Effect.flatMap(buildEvents(state.before, state.after), (events) =>
        writeKnown({ id, append: planned?.append, state, events, changes })
      )
      return Effect.flatMap(write, (done) => {
        if (!done) return inTransaction
        if (planned !== undefined) known.trackLog(planned.build, planned.append.stats)
        return changed(lifecycle, state.after, planned === undefined ? [] : [planned.change])
      })
    })

export const requestCancel = (lifecycle: Lifecycle) =>
  Effect.fnUntraced(function* (access: Access.Access, id: Id.BuildId, reason: string | null) {
    const at = yield* now
    const outcome = yield* lifecycle.driver
      .transaction((tx) =>
        Effect.gen(function* () {
          const build = yield* tx.lockBuild(id)
          if (build === undefined || !Access.allows(access, build.workspaceId)) {
            return yield* NotFound.of("build", id)
          }
          if (build.phase === "stopped") return { build, accepted: false }
          const next = yield* Effect.fromResult(BuildState.transition(build, { _tag: "Cancel", at, reason }))
          return { build: yield* writeState(lifecycle, tx, build, next), accepted: true }
        })
      )
      .pipe(
        // Any build that has not stopped accepts a cancel request.
        Effect.catchTag(["InvalidTransition", "LeaseLost"], Effect.die)
      )
    if (outcome.accepted) yield* changed(lifecycle, outcome.build)
    return outcome
  })

/** Renews a lease on the transaction's clock, after the driver's one-statement renewal if it has one. */
export const heartbeat =
  (lifecycle: Lifecycle) => (id: Id.BuildId, fence: BuildState.Fence, leaseMs: number) =>
    Effect.gen(function* () {
      const fast = lifecycle.driver.fastPaths?.heartbeat
      const renewed = fast === undefined ? undefined : yield* fast(id, fence, leaseMs)
      const build =
        renewed ??
        // Nothing renewed (or no fast path): the locked read says whether the build is missing or lost.
        (yield* lifecycle.driver.transaction((tx) =>
          Effect.gen(function* () {
            const held = yield* lockFenced(tx, id, fence)
            const at = yield* tx.now
            return yield* writeState(lifecycle, tx, held, {
              ...held,
              leaseExpiresAt: DateTime.add(at, { milliseconds: leaseMs })
            })
          })
        ))
      lifecycle.known.track(build)
      return build
    })

/** A step written with the event that announces it. */
export const recordStep =
  (lifecycle: Lifecycle) => (id: Id.BuildId, fence: BuildState.Fence, step: Build.BuildStep) =>
    Effect.gen(function* () {
      const at = yield* now
      const eventId = yield* Id.generate("msg")
      yield* lifecycle.driver.transaction((tx) =>
        Effect.gen(function* () {
          const build = yield* lockFenced(tx, id, fence)
          yield* tx.upsertStep(id, step)
          yield* tx.insertEvents([Event.forStep(eventId, build, step, at)])
        })
      )
      yield* lifecycle.publish([eventsWritten])
    })
