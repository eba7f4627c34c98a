/**
 * Kiln's Storage on PostgreSQL, through `pg`: many Kiln processes on one database (DESIGN.md §8).
 *
 * Reads are single statements, each one snapshot. A write that reads first runs in a transaction and
 * locks the rows it read, so, as on SQLite, nothing changes between the read and the write. A build
 * changes state only through `BuildState.transition` applied to the row as read, written back with
 * compare-and-set on the phase and fence it was read with. The claim is the exception that proves the
 * rule: one statement on the database clock (see `statements.claimOldest`).
 *
 * Leases are taken, renewed and reaped on the database's clock, so processes whose clocks disagree
 * agree on them. `changes` hears this storage's writes at once, and every other process's through
 * LISTEN/NOTIFY on a channel of the schema's own.
 */
import { randomUUID } from "node:crypto"
import {
  Access,
  ApiToken,
  App,
  AppVersion,
  Bootstrap,
  Build,
  BuildState,
  Claim,
  Fields,
  Id,
  LogBudget,
  LogLine,
  type Query,
  SqlRows as rows,
  SourceEvent,
  Sql,
  Storage,
  StorageError,
  Trigger,
  Workspace
} from "@kiln/core"
import { Clock, DateTime, Effect, Layer, Option, PubSub, Result, type Scope, Stream } from "effect"
import { makeBatcher } from "./internal/batcher.ts"
import { clientConfig, lockKey, open, type Run } from "./internal/connection.ts"
import { channelOf, listen, payload } from "./internal/listener.ts"
import { migrate } from "./internal/migrations.ts"
import { statements, tokenInsertColumns, triggerWriteColumns, valuesOf } from "./internal/statements.ts"

export interface Options {
  /** `postgres://user:password@host:port/database` */
  readonly connectionString: string
  /** The schema Kiln's tables live in, created if missing (default `kiln`). */
  readonly schema?: string | undefined
  /** Connections in the pool (default 10); the change listener holds one more. */
  readonly poolSize?: number | undefined
  readonly logBudget?: LogBudget.Budget | undefined
}

/** Opens the pool and the listener for the life of the scope, migrates the schema and builds the service. */
export const make = (
  options: Options
): Effect.Effect<Storage.StorageShape, StorageError.StorageError, Scope.Scope> =>
  Effect.gen(function* () {
    const schema = options.schema ?? "kiln"
    const connection = { connectionString: options.connectionString, schema }
    const db = yield* open({ ...connection, poolSize: options.poolSize ?? 10 })
    yield* migrate(db, schema)
    const { run, transaction } = db
    const budget = options.logBudget ?? LogBudget.defaultBudget
    const changes = yield* PubSub.unbounded<Storage.Change>()
    const channel = channelOf(schema)
    // Tags this storage's notifications, so that it skips its own: it has published them already.
    const source = randomUUID()
    yield* listen({
      config: clientConfig(connection),
      channel,
      source,
      onChange: (change) => PubSub.publishUnsafe(changes, change)
    })

    const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))
    const publish = (change: Storage.Change) => PubSub.publish(changes, change)
    /** The last two parameters of a statement that publishes a change: the channel and the payload. */
    const notify = (change: Storage.Change) => [channel, payload(source, [change])]

    /** The row a caller may see, or `NotFound`: another workspace's row looks exactly like a missing one. */
    const visible =
      (access: Access.Access, entity: string, id: string) =>
      <R extends { readonly workspace_id: string }>(
        found: ReadonlyArray<R>
      ): Effect.Effect<R, Storage.NotFound> => {
        const row = found[0]
        return row !== undefined && Access.allows(access, row.workspace_id as Id.WorkspaceId)
          ? Effect.succeed(row)
          : Effect.fail(Storage.NotFound.of(entity, id))
      }

    /** The build, locked until the transaction ends. */
    const lockedBuild = (tx: Run, id: Id.BuildId) =>
      Effect.flatMap(tx<rows.BuildRow>(statements.lockBuild, [id]), ([row]) =>
        row === undefined ? Effect.fail(Storage.NotFound.of("build", id)) : Effect.succeed(rows.toBuild(row))
      )

    /**
     * Writes a state change computed from `before`, publishing it on commit. The row is locked since it
     * was read, so a miss means the database broke that promise: it fails as Busy (rolling back) and the
     * retry recomputes the change from a fresh read.
     */
    const writeState = (tx: Run, before: Build.Build, after: Build.Build) =>
      Effect.flatMap(
        tx(statements.writeBuildState, [
          after.id,
          ...valuesOf(rows.fromBuild(after), rows.buildStateColumns),
          before.phase,
          before.owner,
          before.attempt,
          ...notify(Storage.buildChanged(after))
        ]),
        (written) =>
          written.length === 1
            ? Effect.succeed(after)
            : Effect.fail(
                new StorageError.StorageError({
                  reason: "Busy",
                  message: `PostgreSQL storage: build ${before.id} changed while it was being written`
                })
              )
      )

    /**
     * What this storage last knew of the builds it is driving: the state it wrote or read, and the log
     * bookkeeping of the lines it stored. The engine's own transitions and appends start from these and
     * are written as compare-and-set in batches (`statements.writeBatch`); when a
     * row changed meanwhile (a cancel, a reaper, another process) the write misses and takes the locking
     * path. Forgotten when the build stops, and bounded in case a build never does here.
     */
    const known = new Map<Id.BuildId, Build.Build>()
    const knownLogs = new Map<Id.BuildId, { readonly build: Build.Build; readonly stats: LogBudget.Stats }>()
    const remember = <V>(map: Map<Id.BuildId, V>, id: Id.BuildId, value: V) => {
      map.delete(id)
      if (map.size >= 10_000) map.delete(map.keys().next().value!)
      map.set(id, value)
    }
    const track = (build: Build.Build) => {
      if (build.phase === "stopped") {
        known.delete(build.id)
        knownLogs.delete(build.id)
      } else remember(known, build.id, build)
    }

    const changed = (build: Build.Build) =>
      Effect.as(
        Effect.andThen(
          Effect.sync(() => track(build)),
          publish(Storage.buildChanged(build))
        ),
        build
      )

    const stateOf = (build: Build.Build) => valuesOf(rows.fromBuild(build), rows.buildStateColumns)
    const noState = rows.buildStateColumns.map(() => null)
    const noStats = rows.logStatsColumns.slice(1).map(() => null)

    /** An owner write started from what this storage knows: an append, a state change, or both in turn. */
    interface Write {
      readonly id: Id.BuildId
      readonly append?: KnownAppend | undefined
      readonly state?: { readonly before: Build.Build; readonly after: Build.Build } | undefined
    }
    interface KnownAppend {
      readonly build: Build.Build
      readonly expected: number
      readonly stats: LogBudget.Stats
      readonly lines: ReadonlyArray<LogLine.LogLine>
      readonly change: Storage.Change
    }
    const writeBatch = (writes: ReadonlyArray<Write>) => {
      const lines = writes.flatMap(({ id, append }) =>
        (append?.lines ?? []).map((line) => rows.fromLogLine(id, line))
      )
      return Effect.flatMap(
        run<{ readonly id: string }>(statements.writeBatch, [
          writes.map(({ id }) => id),
          writes.map(({ append }) => append?.build.owner ?? null),
          writes.map(({ append }) => append?.build.attempt ?? null),
          writes.map(({ append }) => append?.expected ?? null),
          ...transpose(
            writes.map(({ id, append }) =>
              append === undefined
                ? noStats
                : valuesOf(rows.fromLogStats(id, append.stats), rows.logStatsColumns).slice(1)
            )
          ),
          ...transpose(writes.map(({ state }) => (state === undefined ? noState : stateOf(state.after)))),
          ...transpose(writes.map(({ state }) => (state === undefined ? noState : stateOf(state.before)))),
          writes.map(({ append, state }) =>
            [append?.change, state && Storage.buildChanged(state.after)]
              .flatMap((change) => (change === undefined ? [] : [JSON.stringify(change)]))
              .join(",")
          ),
          ...columnsOf(lines, ["build_id", ...lineColumns]),
          channel,
          source
        ]),
        // What was written is known from now on, and its changes go out together: one wake-up for a
        // subscriber, not one per change.
        (written) => {
          const ids = new Set(written.map((row) => row.id))
          const published: Array<Storage.Change> = []
          for (const { id, append, state } of writes) {
            if (!ids.has(id)) continue
            if (append !== undefined) {
              remember(knownLogs, id, { build: append.build, stats: append.stats })
              published.push(append.change)
            }
            if (state !== undefined) {
              track(state.after)
              published.push(Storage.buildChanged(state.after))
            }
          }
          return Effect.as(
            PubSub.publishAll(changes, published),
            writes.map(({ id }) => ids.has(id))
          )
        }
      )
    }
    /**
     * A write planned from what this storage knows, as part of one batched statement. Answers whether it
     * was written; when it missed, the caller takes the locking path.
     */
    const writeKnown = yield* makeBatcher({
      max: 100,
      // One statement at a time, carrying everything queued meanwhile: an engine's slot is free before
      // its build's last writes are stored, so a write that waits costs no throughput, while each
      // statement costs a round trip's CPU on both sides.
      workers: 1,
      failed: false,
      // A build written twice in one statement would be updated twice: a second write waits for a later
      // batch's turn by taking the locking path.
      run: (batch: ReadonlyArray<Write>) => {
        const seen = new Set<Id.BuildId>()
        const repeated = batch.map(({ id }) => {
          const again = seen.has(id)
          seen.add(id)
          return again
        })
        if (!repeated.includes(true)) return writeBatch(batch)
        return Effect.map(writeBatch(batch.filter((_, i) => !repeated[i])), (answers) => {
          let next = 0
          return repeated.map((again) => (again ? false : answers[next++]!))
        })
      }
    })

    /** The append of `lines` planned from what this storage knows, when it trims nothing; else none. */
    const knownAppend = (
      id: Id.BuildId,
      fence: BuildState.Fence,
      lines: ReadonlyArray<LogLine.LogLine>
    ): KnownAppend | undefined => {
      const entry = knownLogs.get(id)
      if (entry === undefined || Result.isFailure(BuildState.checkFence(entry.build, fence))) return undefined
      const plan = LogBudget.planAppend(id, entry.stats, lines, budget)
      if (plan instanceof LogBudget.LogSequenceGap || plan.fresh.length === 0 || plan.excessBytes > 0) {
        return undefined
      }
      return {
        build: entry.build,
        expected: entry.stats.lastSeq,
        stats: plan.stats,
        lines: plan.fresh,
        change: {
          _tag: "LogsAppended",
          buildId: id,
          workspaceId: entry.build.workspaceId,
          lastSeq: plan.stats.lastSeq
        }
      }
    }
    /**
     * The state change `events` make in turn to the build as this storage knows it; else none. Only the
     * last state is written and announced: a change is a hint to read the build, which shows the last.
     */
    const knownTransition = (id: Id.BuildId, events: ReadonlyArray<BuildState.BuildEvent>) => {
      const before = known.get(id)
      if (before === undefined) return undefined
      let after = before
      for (const event of events) {
        const next = BuildState.transition(after, event)
        if (Result.isFailure(next)) return undefined
        after = next.success
      }
      return { before, after }
    }
    const list = <Row, Raw>(
      table: Fields.Table<Row>,
      toDomain: (raw: Raw) => Row,
      access: Access.Access,
      query: Query.ListQuery,
      options: Sql.CompileOptions = {}
    ) =>
      Sql.runList(
        "postgres",
        table,
        access,
        query,
        {
          rows: (statement) =>
            Effect.map(run<Raw>({ text: statement.text }, statement.params), (found) => found.map(toDomain)),
          count: (statement) =>
            Effect.map(
              run<{ readonly n: number }>({ text: statement.text }, statement.params),
              ([row]) => row!.n
            ),
          exists: (statement) =>
            Effect.map(run({ text: statement.text }, statement.params), (found) => found.length > 0)
        },
        options
      )

    /**
     * Chooses what a claim with caps takes. `Claim.select` reads candidates oldest first and stops at
     * `max`; they come in growing batches, since the caps may thin a batch out below `max`. Choosing from
     * a prefix of the queue picks what choosing from the whole queue would, so each batch starts over.
     */
    const choose = (tx: Run, request: Claim.ClaimRequest, active: Claim.ActiveCounts) =>
      Effect.gen(function* () {
        for (let batch = request.max * 4; ; batch *= 4) {
          const queued = yield* tx<Claim.Candidate>(statements.queuedOldest, [batch])
          const chosen = Claim.select(queued, active, request.max, request.limits)
          if (chosen.length >= request.max || queued.length < batch) return chosen
        }
      })

    /**
     * Claims with caps take turns, on a transaction-scoped advisory lock of the schema: under it they count
     * the active builds, choose, and claim, so two processes can never both count "0 active" for one app
     * and both claim. (Claims without caps never wait for it.) SERIALIZABLE would abort and retry exactly
     * when engines claim together; the lock queues them for the few milliseconds a claim takes.
     */
    const claimWithCaps = (request: Claim.ClaimRequest) =>
      transaction((tx) =>
        Effect.gen(function* () {
          yield* tx(statements.advisoryLock, [lockKey(schema, "claim")])
          const byWorkspace = new Map<string, number>()
          const byApp = new Map<string, number>()
          const counted = yield* tx<{ workspace_id: string; entity_id: string; active: number }>(
            statements.activeCounts
          )
          for (const { workspace_id, entity_id, active } of counted) {
            byApp.set(entity_id, active)
            byWorkspace.set(workspace_id, (byWorkspace.get(workspace_id) ?? 0) + active)
          }
          const chosen = yield* choose(tx, request, { byWorkspace, byApp })
          if (chosen.length === 0) return []
          return yield* tx<rows.BuildRow>(statements.claimChosen, [
            request.owner,
            request.leaseMs,
            channel,
            source,
            chosen.map((candidate) => candidate.id)
          ])
        })
      )

    /**
     * The oldest tail lines an append may trim, stored and then fresh, for `LogBudget.planTrim`. Stored
     * lines come in growing batches until they cover the excess: planTrim reads only as far as it must.
     */
    const trimOf = (tx: Run, id: Id.BuildId, plan: LogBudget.AppendPlan, at: DateTime.Utc) =>
      Effect.gen(function* () {
        const from = LogBudget.trimFromSeq(plan.stats)
        let stored: ReadonlyArray<{ readonly seq: number; readonly bytes: number }> = []
        for (let batch = plan.fresh.length + 64; ; batch *= 4) {
          stored = yield* tx<{ readonly seq: number; readonly bytes: number }>(statements.tailLineSizes, [
            id,
            from,
            batch
          ])
          const bytes = stored.reduce((sum, line) => sum + line.bytes, 0)
          if (stored.length < batch || bytes >= plan.excessBytes) break
        }
        const fresh = plan.fresh
          .filter((line) => line.seq >= from)
          .map((line) => ({ seq: line.seq, bytes: LogLine.byteLength(line.text) }))
        return { from, trim: LogBudget.planTrim(plan.stats, plan.excessBytes, [...stored, ...fresh], at) }
      })

    /**
     * Appends lines to the log of a build whose row this transaction has locked, trimming it to its budget;
     * answers the change and the new bookkeeping, or none for a repeat.
     */
    const appendLocked = (
      tx: Run,
      build: Build.Build,
      stored: LogBudget.Stats,
      lines: ReadonlyArray<LogLine.LogLine>,
      at: DateTime.Utc
    ) =>
      Effect.gen(function* () {
        const id = build.id
        const plan = LogBudget.planAppend(id, stored, lines, budget)
        if (plan instanceof LogBudget.LogSequenceGap) return yield* plan
        if (plan.fresh.length === 0) return undefined
        const { from, trim } =
          plan.excessBytes > 0 ? yield* trimOf(tx, id, plan, at) : { from: 1, trim: undefined }
        // Stored lines in [from, through] are deleted; fresh ones there are never written.
        const through = trim?.deleteThroughSeq ?? 0
        const written = plan.fresh
          .filter((line) => line.seq < from || line.seq > through)
          .map((line) => rows.fromLogLine(id, line))
        const stats = trim?.stats ?? plan.stats
        const change: Storage.Change = {
          _tag: "LogsAppended",
          buildId: id,
          workspaceId: build.workspaceId,
          lastSeq: stats.lastSeq
        }
        yield* tx(statements.writeLogs, [
          id,
          ...columnsOf(written, lineColumns),
          from,
          through,
          ...valuesOf(rows.fromLogStats(id, stats), rows.logStatsColumns).slice(1),
          ...notify(change)
        ])
        return { change, stats }
      })

    /** A transition applied to the build as read under its row lock: always the authoritative answer. */
    const transitionLocked = (id: Id.BuildId, event: BuildState.BuildEvent) =>
      Effect.flatMap(
        transaction((tx) =>
          Effect.flatMap(lockedBuild(tx, id), (build) =>
            Effect.flatMap(Effect.fromResult(BuildState.transition(build, event)), (next) =>
              writeState(tx, build, next)
            )
          )
        ),
        changed
      )

    /** Reads the trigger under its row lock, applies `change`, and writes what changed. */
    const changeTrigger = <E>(
      access: Access.Access,
      id: Id.TriggerId,
      change: (trigger: Trigger.Trigger, at: DateTime.Utc) => Effect.Effect<Trigger.Trigger, E>
    ) =>
      Effect.flatMap(now, (at) =>
        transaction((tx) =>
          Effect.gen(function* () {
            const row = yield* Effect.flatMap(
              tx<rows.TriggerRow>(statements.lockTrigger, [id]),
              visible(access, "trigger", id)
            )
            const before = rows.toTrigger(row)
            const after = yield* change(before, at)
            if (after !== before) {
              yield* tx(statements.writeTrigger, [
                id,
                ...valuesOf(rows.fromTrigger(after), triggerWriteColumns)
              ])
            }
            return after
          })
        )
      )

    const storage: Storage.StorageShape = {
      createWorkspace: Effect.fnUntraced(function* (input) {
        const workspace = Workspace.make(yield* Id.generate("wsp"), input, yield* now)
        yield* run(statements.insertWorkspace, valuesOf(rows.fromWorkspace(workspace), rows.workspaceColumns))
        return workspace
      }),
      getWorkspace: (access, id) =>
        Effect.flatMap(run<rows.WorkspaceRow>(statements.workspaceById, [id]), ([row]) =>
          row !== undefined && Access.allows(access, id)
            ? Effect.succeed(rows.toWorkspace(row))
            : Effect.fail(Storage.NotFound.of("workspace", id))
        ),
      listWorkspaces: (access, query) => list(Fields.workspaces, rows.toWorkspace, access, query),

      createApp: Effect.fnUntraced(function* (access, input) {
        const app = App.make(yield* Id.generate("app"), input, yield* now)
        if (!Access.allows(access, input.workspaceId)) {
          return yield* Storage.NotFound.of("workspace", input.workspaceId)
        }
        const inserted = yield* run(statements.insertApp, valuesOf(rows.fromApp(app), rows.appColumns))
        if (inserted.length === 1) return app
        const [workspace] = yield* run(statements.workspaceById, [input.workspaceId])
        return yield* workspace === undefined
          ? Storage.NotFound.of("workspace", input.workspaceId)
          : new Storage.Conflict({ message: `an app with handle ${input.handle} already exists` })
      }),
      getApp: (access, id) =>
        Effect.map(
          Effect.flatMap(run<rows.AppRow>(statements.appById, [id]), visible(access, "app", id)),
          rows.toApp
        ),
      listApps: (access, query) => list(Fields.apps, rows.toApp, access, query),

      createAppVersion: Effect.fnUntraced(function* (access, input) {
        const at = yield* now
        const id = yield* Id.generate("ver")
        const app = yield* Effect.flatMap(
          run<rows.AppRow>(statements.appById, [input.appId]),
          visible(access, "app", input.appId)
        )
        const version = AppVersion.make(id, app.workspace_id as Id.WorkspaceId, input, at)
        yield* run(
          statements.insertAppVersion,
          valuesOf(rows.fromAppVersion(version), rows.appVersionColumns)
        )
        return version
      }),
      resolveAppVersion: Effect.fnUntraced(function* (access, id, resolution) {
        const at = yield* now
        return yield* transaction((tx) =>
          Effect.gen(function* () {
            const row = yield* Effect.flatMap(
              tx<rows.AppVersionRow>(statements.lockAppVersion, [id]),
              visible(access, "app version", id)
            )
            const version = rows.toAppVersion(row)
            if (version.status !== "pending") {
              return yield* new Storage.Conflict({
                message: `app version ${id} is already ${version.status}`
              })
            }
            const resolved = rows.fromAppVersion(AppVersion.resolve(version, resolution, at))
            yield* tx(statements.resolveAppVersion, [
              id,
              resolved.status,
              resolved.source,
              resolved.commit_sha,
              resolved.error,
              resolved.updated_at
            ])
            return rows.toAppVersion(resolved)
          })
        )
      }),
      getAppVersion: (access, id) =>
        Effect.map(
          Effect.flatMap(
            run<rows.AppVersionRow>(statements.appVersionById, [id]),
            visible(access, "app version", id)
          ),
          rows.toAppVersion
        ),
      listAppVersions: (access, query) => list(Fields.appVersions, rows.toAppVersion, access, query),

      createTrigger: Effect.fnUntraced(function* (access, input) {
        const at = yield* now
        const id = yield* Id.generate("trg")
        const app = yield* Effect.flatMap(
          run<rows.AppRow>(statements.appById, [input.appId]),
          visible(access, "app", input.appId)
        )
        const trigger = Trigger.make(id, app.workspace_id as Id.WorkspaceId, input, at)
        yield* run(statements.insertTrigger, valuesOf(rows.fromTrigger(trigger), rows.triggerColumns))
        return trigger
      }),
      getTrigger: (access, id) =>
        Effect.map(
          Effect.flatMap(run<rows.TriggerRow>(statements.triggerById, [id]), visible(access, "trigger", id)),
          rows.toTrigger
        ),
      listTriggers: (access, query) => list(Fields.triggers, rows.toTrigger, access, query),
      updateTrigger: (access, id, patch) =>
        changeTrigger(access, id, (trigger, at) =>
          trigger.deletedAt !== null
            ? Effect.fail(new Storage.Conflict({ message: `trigger ${id} is deleted` }))
            : Effect.succeed(Trigger.update(trigger, patch, at))
        ),
      deleteTrigger: (access, id) =>
        changeTrigger(access, id, (trigger, at) =>
          // Deleting twice keeps the first time.
          Effect.succeed(trigger.deletedAt !== null ? trigger : Trigger.remove(trigger, at))
        ),
      activeTriggers: (access, workspaceId) =>
        Access.allows(access, workspaceId)
          ? Effect.map(run<rows.TriggerRow>(statements.activeTriggers, [workspaceId]), (found) =>
              found.map(rows.toTrigger)
            )
          : Effect.succeed([]),

      recordSourceEvent: Effect.fnUntraced(function* (access, input) {
        const event = SourceEvent.make(yield* Id.generate("evt"), input, yield* now)
        if (!Access.allows(access, input.workspaceId)) {
          return yield* Storage.NotFound.of("workspace", input.workspaceId)
        }
        const inserted = yield* run(
          statements.insertSourceEvent,
          valuesOf(rows.fromSourceEvent(event), rows.sourceEventColumns)
        )
        if (inserted.length === 1) return { event, created: true }
        const [stored] = yield* run<rows.SourceEventRow>(statements.sourceEventByDelivery, [
          input.workspaceId,
          input.deliveryId
        ])
        return stored === undefined
          ? yield* Storage.NotFound.of("workspace", input.workspaceId)
          : { event: rows.toSourceEvent(stored), created: false }
      }),
      getSourceEvent: (access, id) =>
        Effect.map(
          Effect.flatMap(
            run<rows.SourceEventRow>(statements.sourceEventById, [id]),
            visible(access, "source event", id)
          ),
          rows.toSourceEvent
        ),

      createToken: Effect.fnUntraced(function* (input) {
        const token = ApiToken.make(yield* Id.generate("tok"), input, yield* now)
        const granted = input.workspaceIds === "*" ? [] : input.workspaceIds
        return yield* transaction((tx) =>
          Effect.gen(function* () {
            const existing = yield* tx<{ readonly id: string }>(statements.existingWorkspaces, [granted])
            const found = new Set(existing.map((row) => row.id))
            const missing = granted.find((id) => !found.has(id))
            if (missing !== undefined) return yield* Storage.NotFound.of("workspace", missing)
            yield* tx(
              statements.insertToken,
              valuesOf(rows.fromToken(token, input.tokenHash), tokenInsertColumns)
            )
            if (granted.length > 0) yield* tx(statements.grantTokenWorkspaces, [token.id, granted])
            return token
          })
        )
      }),
      findTokenByHash: (tokenHash) =>
        Effect.map(run<rows.TokenRow>(statements.tokenByHash, [tokenHash]), ([row]) =>
          row === undefined ? Option.none() : Option.some(rows.toToken(row))
        ),
      getToken: (access, id) =>
        Effect.flatMap(run<rows.TokenRow>(statements.tokenById, [id]), ([row]) => {
          const token = row === undefined ? undefined : rows.toToken(row)
          return token !== undefined && ApiToken.visibleTo(access, token)
            ? Effect.succeed(token)
            : Effect.fail(Storage.NotFound.of("token", id))
        }),
      listTokens: (access, query) =>
        list(Fields.tokens, rows.toToken, access, query, {
          select: rows.tokenColumns.map((column) => `t0.${column}`).join(", ")
        }),
      revokeToken: Effect.fnUntraced(function* (access, id) {
        const at = yield* now
        const token = yield* storage.getToken(access, id)
        // A token's grants never change, so the check above still holds for the write.
        const [revoked] = yield* run<rows.TokenRow>(statements.revokeToken, [
          token.id,
          DateTime.toEpochMillis(at)
        ])
        return rows.toToken(revoked!)
      }),

      bootstrap: Effect.fnUntraced(function* (input) {
        const at = yield* now
        const workspaceId = yield* Id.generate("wsp")
        const token = ApiToken.make(yield* Id.generate("tok"), Bootstrap.adminToken(input.token), at)
        // Under the schema's bootstrap lock, processes starting together take turns: the first sees no
        // token and issues one, the others see it. (Nothing else takes this lock; nothing else waits.)
        return yield* transaction((tx) =>
          Effect.gen(function* () {
            yield* tx(statements.advisoryLock, [lockKey(schema, "bootstrap")])
            const [first] = yield* tx<rows.TokenRow & { readonly tokens: number }>(statements.oldestToken)
            if (first !== undefined) {
              return { _tag: "Existing", first: rows.toToken(first), tokens: first.tokens } as const
            }
            const [existing] = yield* tx<rows.WorkspaceRow>(statements.oldestWorkspace)
            const workspace =
              existing === undefined
                ? Workspace.make(workspaceId, input.workspace, at)
                : rows.toWorkspace(existing)
            if (existing === undefined) {
              yield* tx(
                statements.insertWorkspace,
                valuesOf(rows.fromWorkspace(workspace), rows.workspaceColumns)
              )
            }
            yield* tx(
              statements.insertToken,
              valuesOf(rows.fromToken(token, input.token.tokenHash), tokenInsertColumns)
            )
            return { _tag: "Issued", workspace, createdWorkspace: existing === undefined, token } as const
          })
        )
      }),

      createBuild: Effect.fnUntraced(function* (access, input) {
        const at = yield* now
        const id = yield* Id.generate("bld")
        const key = input.idempotencyKey ?? null
        const sourceEventId = input.sourceEventId ?? null
        const { build, created } = yield* transaction((tx) =>
          Effect.gen(function* () {
            const row = yield* Effect.flatMap(
              tx<rows.AppVersionRow>(statements.versionToBuild, [input.appVersionId]),
              visible(access, "app version", input.appVersionId)
            )
            const version = rows.toAppVersion(row)
            if (version.status !== "ready") {
              return yield* new Storage.Conflict({
                message: `app version ${version.id} is ${version.status}, not ready`
              })
            }
            if (sourceEventId !== null) {
              const [event] = yield* tx<rows.SourceEventRow>(statements.sourceEventById, [sourceEventId])
              if (event === undefined || event.workspace_id !== version.workspaceId) {
                return yield* Storage.NotFound.of("source event", sourceEventId)
              }
            }
            if (key !== null) yield* tx(statements.lockWorkspace, [version.workspaceId])
            const [existing] = yield* tx<rows.BuildRow>(statements.existingBuild, [
              version.workspaceId,
              key,
              version.appId,
              sourceEventId
            ])
            if (existing !== undefined) {
              const stored = rows.toBuild(existing)
              // A key names one request: reusing it for another version is a mistake, not a retry.
              if (key !== null && stored.idempotencyKey === key && stored.appVersionId !== version.id) {
                return yield* new Storage.Conflict({
                  message: "the idempotency key was used for a different app version"
                })
              }
              return { build: stored, created: false }
            }
            const [sequence] = yield* tx<{ readonly build_sequence: number }>(statements.nextBuildSequence, [
              version.appId
            ])
            const build = Build.make(id, version, sequence!.build_sequence, input, at)
            yield* tx(statements.insertBuild, [
              ...valuesOf(rows.fromBuild(build), rows.buildColumns),
              ...notify(Storage.buildChanged(build))
            ])
            return { build, created: true }
          })
        )
        return created ? yield* changed(build) : build
      }),
      getBuild: (access, id) =>
        Effect.map(
          Effect.flatMap(
            run<rows.BuildRow & { readonly steps: ReadonlyArray<rows.BuildStepRow> }>(
              statements.buildWithSteps,
              [id]
            ),
            visible(access, "build", id)
          ),
          (row) => ({ ...rows.toBuild(row), steps: row.steps.map(rows.toBuildStep) })
        ),
      listBuilds: (access, query) => list(Fields.builds, rows.toBuild, access, query),

      claimNext: Effect.fnUntraced(function* (request) {
        if (request.max <= 0) return []
        const claimed = Claim.hasCaps(request.limits)
          ? yield* claimWithCaps(request)
          : yield* run<rows.BuildRow>(statements.claimOldest, [
              request.owner,
              request.leaseMs,
              channel,
              source,
              request.max
            ])
        const builds = claimed.map(rows.toBuild)
        for (const build of builds) {
          track(build)
          // A build is claimed before any line of its log can be stored: its bookkeeping starts empty.
          remember(knownLogs, build.id, { build, stats: LogBudget.emptyStats })
        }
        yield* PubSub.publishAll(changes, builds.map(Storage.buildChanged))
        return builds
      }),
      heartbeat: (id, fence, leaseMs) =>
        Effect.flatMap(
          run<rows.BuildRow>(statements.heartbeat, [id, fence.owner, fence.attempt, leaseMs]),
          ([renewed]) =>
            renewed !== undefined
              ? Effect.sync(() => {
                  const build = rows.toBuild(renewed)
                  track(build)
                  return build
                })
              : // Nothing renewed: the build is missing, or the fence no longer holds it.
                Effect.flatMap(run<rows.BuildRow>(statements.buildById, [id]), ([row]) =>
                  row === undefined
                    ? Effect.fail(Storage.NotFound.of("build", id))
                    : Effect.flatMap(Effect.fromResult(BuildState.checkFence(rows.toBuild(row), fence)), () =>
                        // The fence holds after all: the build changed in between; renew again.
                        storage.heartbeat(id, fence, leaseMs)
                      )
                )
        ),
      transition: (id, event) =>
        Effect.suspend(() => {
          const state = knownTransition(id, [event])
          return state === undefined
            ? transitionLocked(id, event)
            : Effect.flatMap(writeKnown({ id, state }), (done) =>
                done ? Effect.succeed(state.after) : transitionLocked(id, event)
              )
        }),

      requestCancel: Effect.fnUntraced(function* (access, id, reason) {
        const at = yield* now
        const outcome = yield* transaction((tx) =>
          Effect.gen(function* () {
            const build = yield* lockedBuild(tx, id).pipe(
              Effect.filterOrFail(
                (build) => Access.allows(access, build.workspaceId),
                () => Storage.NotFound.of("build", id)
              )
            )
            if (build.phase === "stopped") return { build, accepted: false }
            const next = yield* Effect.fromResult(
              BuildState.transition(build, { _tag: "Cancel", at, reason })
            )
            return { build: yield* writeState(tx, build, next), accepted: true }
          })
        ).pipe(
          // Any build that has not stopped accepts a cancel request.
          Effect.catchTag(["InvalidTransition", "LeaseLost"], Effect.die)
        )
        if (outcome.accepted) yield* changed(outcome.build)
        return outcome
      }),
      reapExpired: Effect.fnUntraced(function* () {
        const { reaped, published } = yield* transaction((tx) =>
          Effect.gen(function* () {
            const expired = yield* tx<
              rows.BuildRow & { readonly now: number; readonly stats: rows.LogStatsRow | null }
            >(statements.expiredLeases)
            const stopped: Array<Build.Build> = []
            const published: Array<Storage.Change> = []
            for (const row of expired) {
              const build = rows.toBuild(row)
              const at = DateTime.makeUnsafe(row.now)
              const next = BuildState.transition(build, { _tag: "LeaseExpired", at })
              if (Result.isFailure(next)) continue
              // In the same transaction, under the row lock: the line and the stop are stored together, once.
              const stats = row.stats === null ? LogBudget.emptyStats : rows.toLogStats(row.stats)
              const line = BuildState.reapedLine(build, next.success, stats.lastSeq + 1)
              const appended = yield* appendLocked(tx, build, stats, [line], at)
              stopped.push(yield* writeState(tx, build, next.success))
              if (appended !== undefined) published.push(appended.change)
              published.push(Storage.buildChanged(next.success))
            }
            return { reaped: stopped, published }
          })
        ).pipe(
          // The line continues the log as this transaction reads it: it cannot miss.
          Effect.catchTag("LogSequenceGap", Effect.die)
        )
        reaped.forEach(track)
        yield* PubSub.publishAll(changes, published)
        return reaped
      }),

      recordStep: (id, fence, step) =>
        transaction((tx) =>
          Effect.gen(function* () {
            yield* Effect.fromResult(BuildState.checkFence(yield* lockedBuild(tx, id), fence))
            yield* tx(statements.upsertStep, valuesOf(rows.fromBuildStep(id, step), rows.stepColumns))
          })
        ),
      appendLogs: Effect.fnUntraced(function* (id, fence, batch) {
        const lines = batch.map(storable)
        const append = knownAppend(id, fence, lines)
        if (append !== undefined && (yield* writeKnown({ id, append }))) return
        const at = yield* now
        const appended = yield* transaction((tx) =>
          Effect.gen(function* () {
            const [row] = yield* tx<rows.BuildRow & { readonly stats: rows.LogStatsRow | null }>(
              statements.lockBuildForLogs,
              [id]
            )
            if (row === undefined) return yield* Storage.NotFound.of("build", id)
            const build = yield* Effect.fromResult(BuildState.checkFence(rows.toBuild(row), fence))
            const stats = row.stats === null ? LogBudget.emptyStats : rows.toLogStats(row.stats)
            const appended = yield* appendLocked(tx, build, stats, lines, at)
            if (appended !== undefined) remember(knownLogs, id, { build, stats: appended.stats })
            return appended?.change
          })
        )
        if (appended !== undefined) yield* publish(appended)
      }),
      appendAndTransition: (id, fence, batch, events) =>
        Effect.suspend(() => {
          const append = batch.length === 0 ? undefined : knownAppend(id, fence, batch.map(storable))
          const state = knownTransition(id, events)
          const inTurn = Storage.appendThenTransition(storage)(id, fence, batch, events)
          return state === undefined || (batch.length > 0 && append === undefined)
            ? inTurn
            : Effect.flatMap(writeKnown({ id, append, state }), (done) =>
                done ? Effect.succeed(state.after) : inTurn
              )
        }),
      readLogs: (access, id, afterSeq, limit) =>
        Effect.map(
          Effect.flatMap(
            run<{
              readonly workspace_id: string
              readonly stats: rows.LogStatsRow | null
              readonly lines: ReadonlyArray<rows.LogLineRow>
            }>(statements.readLogs, [id, afterSeq, Math.max(0, limit)]),
            visible(access, "build", id)
          ),
          (row) => {
            const stats = row.stats === null ? LogBudget.emptyStats : rows.toLogStats(row.stats)
            return {
              lines: LogBudget.page(row.lines.map(rows.toLogLine), stats, afterSeq, limit),
              truncated: stats.droppedLines > 0,
              lastSeq: stats.lastSeq
            }
          }
        ),

      changes: Effect.map(PubSub.subscribe(changes), Stream.fromSubscription)
    }
    return storage
  })

/** Columns of rows: the arrays a batched statement unnests. */
/** One array per column, as the statements that unnest rows take them, even for no rows. */
const columnsOf = <Row>(
  table: ReadonlyArray<Row>,
  columns: ReadonlyArray<keyof Row>
): Array<Array<unknown>> => columns.map((column) => table.map((row) => row[column]))

/** A log line's columns in the order the statements that write lines take them. */
const lineColumns = ["seq", "ts", "stream", "step", "text"] as const

const transpose = (table: ReadonlyArray<ReadonlyArray<unknown>>): Array<Array<unknown>> =>
  table.length === 0 ? [] : table[0]!.map((_, column) => table.map((row) => row[column]))

/** The Postgres storage as a layer; the pool and the listener are closed when the layer is released. */
export const layer = (options: Options): Layer.Layer<Storage.Storage, StorageError.StorageError> =>
  Layer.effect(Storage.Storage, make(options))

/**
 * A line as PostgreSQL can store it: text cannot hold NUL, so U+FFFD stands in for it, and the budget
 * counts what is stored.
 */
const storable = (line: LogLine.LogLine): LogLine.LogLine =>
  line.text.includes("\u0000") ? { ...line, text: line.text.replaceAll("\u0000", "\uFFFD") } : line
