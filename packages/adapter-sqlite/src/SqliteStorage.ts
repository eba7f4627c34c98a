/**
 * Kiln's Storage on SQLite, through better-sqlite3: the embedded default, one file (or `:memory:`).
 *
 * Every operation reads the clock and mints its ids first, then does all of its reading and writing in
 * one synchronous transaction; writes begin IMMEDIATE, so processes sharing the file queue on its write
 * lock. A build changes state only through `BuildState.transition` applied to the row as read, written
 * back with compare-and-set on the phase and attempt it was read with.
 *
 * `changes` is in-process: it hears the writes made through this storage. Two processes sharing one file
 * do not hear each other's changes; their engines fall back to polling, since storage stays the truth.
 */
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
  type LogLine,
  type Query,
  SqlRows as rows,
  SourceEvent,
  Sql,
  Storage,
  type StorageError,
  Trigger,
  Workspace
} from "@kiln/core"
import type Database from "better-sqlite3"
import { Clock, DateTime, Effect, Layer, Option, PubSub, Result, type Scope, Stream } from "effect"
import { attempt, immediate, open, snapshot } from "./internal/connection.ts"
import { migrate } from "./internal/migrations.ts"
import { prepareStatements, tokenColumns } from "./internal/statements.ts"

export interface Options {
  /** The database file, created if missing, or `:memory:` for a private in-memory database. */
  readonly filename: string
  readonly logBudget?: LogBudget.Budget | undefined
  /** How long a write waits for another connection's lock before it fails as Busy. Default 5000. */
  readonly busyTimeoutMs?: number | undefined
}

/** Opens the database for the life of the scope, migrates it and builds the service. */
export const make = (
  options: Options
): Effect.Effect<Storage.StorageShape, StorageError.StorageError, Scope.Scope> =>
  Effect.gen(function* () {
    const db = yield* open({ filename: options.filename, busyTimeoutMs: options.busyTimeoutMs ?? 5000 })
    yield* migrate(db, yield* Clock.currentTimeMillis)
    const sql = yield* attempt(() => prepareStatements(db))
    const budget = options.logBudget ?? LogBudget.defaultBudget
    const changes = yield* PubSub.unbounded<Storage.Change>()

    const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))
    const write = <A, E>(body: () => Result.Result<A, E>) => immediate(db, body)
    const read = <A, E>(body: () => Result.Result<A, E>) => snapshot(db, body)

    /** A row the caller may see, or `NotFound`: another workspace's row looks exactly like a missing one. */
    const visible = <R extends { readonly workspace_id: string }>(
      row: R | undefined,
      access: Access.Access,
      entity: string,
      id: string
    ): Result.Result<R, Storage.NotFound> =>
      row !== undefined && Access.allows(access, row.workspace_id as Id.WorkspaceId)
        ? Result.succeed(row)
        : Result.fail(Storage.NotFound.of(entity, id))

    const storedBuild = (id: Id.BuildId): Result.Result<Build.Build, Storage.NotFound> => {
      const row = sql.buildById.get(id)
      return row === undefined
        ? Result.fail(Storage.NotFound.of("build", id))
        : Result.succeed(rows.toBuild(row))
    }

    const fenced = (id: Id.BuildId, fence: BuildState.Fence) =>
      Result.flatMap(storedBuild(id), (build) => BuildState.checkFence(build, fence))

    /**
     * Writes a state change computed from `before`. Inside an IMMEDIATE transaction nobody else can have
     * changed the row since it was read, so a miss means the database broke that promise: it fails as Busy
     * (rolling the transaction back) and the retry recomputes the change from a fresh read.
     */
    const writeState = (before: Build.Build, after: Build.Build): Build.Build => {
      const { changes: written } = sql.writeBuildState.run({
        ...rows.fromBuild(after),
        expected_phase: before.phase,
        expected_attempt: before.attempt
      })
      if (written !== 1) {
        throw new Storage.StorageError({
          reason: "Busy",
          message: `SQLite storage: build ${before.id} changed while it was being written`
        })
      }
      return after
    }

    const applyEvent = (id: Id.BuildId, event: BuildState.BuildEvent) =>
      Result.flatMap(storedBuild(id), (build) =>
        Result.map(BuildState.transition(build, event), (next) => writeState(build, next))
      )

    /** Appends lines to a build's log, trimming it to its budget; answers the change, or none for a repeat. */
    const appendToLog = (
      build: Build.Build,
      lines: ReadonlyArray<LogLine.LogLine>,
      at: DateTime.Utc
    ): Result.Result<Storage.Change | undefined, LogBudget.LogSequenceGap> => {
      const id = build.id
      const statsRow = sql.logStats.get(id)
      const stored = statsRow === undefined ? LogBudget.emptyStats : rows.toLogStats(statsRow)
      const plan = LogBudget.planAppend(id, stored, lines, budget)
      if (plan instanceof LogBudget.LogSequenceGap) return Result.fail(plan)
      if (plan.fresh.length === 0) return Result.succeed(undefined)
      for (const line of plan.fresh) sql.insertLogLine.run(rows.fromLogLine(id, line))
      const from = LogBudget.trimFromSeq(plan.stats)
      const oldestTail = function* () {
        yield* sql.tailLineSizes.iterate(id, from)
      }
      const trim = LogBudget.planTrim(plan.stats, plan.excessBytes, oldestTail(), at)
      if (trim !== undefined) sql.deleteLogLines.run(id, from, trim.deleteThroughSeq)
      const stats = trim?.stats ?? plan.stats
      sql.upsertLogStats.run(rows.fromLogStats(id, stats))
      return Result.succeed({
        _tag: "LogsAppended",
        buildId: id,
        workspaceId: build.workspaceId,
        lastSeq: stats.lastSeq
      })
    }

    /** Appends an owner's lines, if its fence still holds the build. */
    const appendLines = (
      id: Id.BuildId,
      fence: BuildState.Fence,
      lines: ReadonlyArray<LogLine.LogLine>,
      at: DateTime.Utc
    ): Result.Result<
      Storage.Change | undefined,
      Storage.NotFound | BuildState.LeaseLost | LogBudget.LogSequenceGap
    > => Result.flatMap(fenced(id, fence), (build) => appendToLog(build, lines, at))

    const publish = (change: Storage.Change) => PubSub.publish(changes, change)

    // Compiled list statements, prepared once per distinct text: a page, its count and its neighbor probe
    // share a text across requests of the same shape.
    const compiled = new Map<string, Database.Statement<Array<unknown>, unknown>>()
    const bound = (statement: Sql.Statement) => statement.params as Array<unknown>
    const prepared = (text: string) => {
      let statement = compiled.get(text)
      if (statement === undefined) {
        if (compiled.size >= 500) compiled.clear()
        statement = db.prepare<Array<unknown>, unknown>(text)
        compiled.set(text, statement)
      }
      return statement
    }
    const list = <Row, Raw>(
      table: Fields.Table<Row>,
      toDomain: (raw: Raw) => Row,
      access: Access.Access,
      query: Query.ListQuery,
      options: Sql.CompileOptions = {}
    ) =>
      Sql.runList(
        "sqlite",
        table,
        access,
        query,
        {
          rows: (statement) =>
            attempt(() => (prepared(statement.text).all(...bound(statement)) as Array<Raw>).map(toDomain)),
          count: (statement) =>
            attempt(() => (prepared(statement.text).get(...bound(statement)) as { readonly n: number }).n),
          exists: (statement) =>
            attempt(() => prepared(statement.text).get(...bound(statement)) !== undefined)
        },
        options
      )

    const storage: Storage.StorageShape = {
      createWorkspace: Effect.fnUntraced(function* (input) {
        const workspace = Workspace.make(yield* Id.generate("wsp"), input, yield* now)
        yield* attempt(() => sql.insertWorkspace.run(rows.fromWorkspace(workspace)))
        return workspace
      }),
      getWorkspace: (access, id) =>
        Effect.flatMap(
          attempt(() => sql.workspaceById.get(id)),
          (row) =>
            row !== undefined && Access.allows(access, id)
              ? Effect.succeed(rows.toWorkspace(row))
              : Effect.fail(Storage.NotFound.of("workspace", id))
        ),
      listWorkspaces: (access, query) => list(Fields.workspaces, rows.toWorkspace, access, query),

      createApp: Effect.fnUntraced(function* (access, input) {
        const app = App.make(yield* Id.generate("app"), input, yield* now)
        return yield* write((): Result.Result<App.App, Storage.NotFound | Storage.Conflict> => {
          if (
            !Access.allows(access, input.workspaceId) ||
            sql.workspaceById.get(input.workspaceId) === undefined
          ) {
            return Result.fail(Storage.NotFound.of("workspace", input.workspaceId))
          }
          if (sql.appHandleTaken.get(input.workspaceId, input.handle) !== undefined) {
            return Result.fail(
              new Storage.Conflict({ message: `an app with handle ${input.handle} already exists` })
            )
          }
          sql.insertApp.run(rows.fromApp(app))
          return Result.succeed(app)
        })
      }),
      getApp: (access, id) =>
        Effect.flatMap(
          attempt(() => sql.appById.get(id)),
          (row) => Effect.fromResult(Result.map(visible(row, access, "app", id), rows.toApp))
        ),
      listApps: (access, query) => list(Fields.apps, rows.toApp, access, query),

      createAppVersion: Effect.fnUntraced(function* (access, input) {
        const at = yield* now
        const id = yield* Id.generate("ver")
        return yield* write(() =>
          Result.map(visible(sql.appById.get(input.appId), access, "app", input.appId), (app) => {
            const version = AppVersion.make(id, app.workspace_id as Id.WorkspaceId, input, at)
            sql.insertAppVersion.run(rows.fromAppVersion(version))
            return version
          })
        )
      }),
      resolveAppVersion: Effect.fnUntraced(function* (access, id, resolution) {
        const at = yield* now
        return yield* write((): Result.Result<AppVersion.AppVersion, Storage.NotFound | Storage.Conflict> => {
          const row = visible(sql.appVersionById.get(id), access, "app version", id)
          if (Result.isFailure(row)) return Result.fail(row.failure)
          const version = rows.toAppVersion(row.success)
          if (version.status !== "pending") {
            return Result.fail(
              new Storage.Conflict({ message: `app version ${id} is already ${version.status}` })
            )
          }
          const resolved = AppVersion.resolve(version, resolution, at)
          sql.resolveAppVersion.run(rows.fromAppVersion(resolved))
          return Result.succeed(resolved)
        })
      }),
      getAppVersion: (access, id) =>
        Effect.flatMap(
          attempt(() => sql.appVersionById.get(id)),
          (row) => Effect.fromResult(Result.map(visible(row, access, "app version", id), rows.toAppVersion))
        ),
      listAppVersions: (access, query) => list(Fields.appVersions, rows.toAppVersion, access, query),

      createTrigger: Effect.fnUntraced(function* (access, input) {
        const at = yield* now
        const id = yield* Id.generate("trg")
        return yield* write(() =>
          Result.map(visible(sql.appById.get(input.appId), access, "app", input.appId), (app) => {
            const trigger = Trigger.make(id, app.workspace_id as Id.WorkspaceId, input, at)
            sql.insertTrigger.run(rows.fromTrigger(trigger))
            return trigger
          })
        )
      }),
      getTrigger: (access, id) =>
        Effect.flatMap(
          attempt(() => sql.triggerById.get(id)),
          (row) => Effect.fromResult(Result.map(visible(row, access, "trigger", id), rows.toTrigger))
        ),
      listTriggers: (access, query) => list(Fields.triggers, rows.toTrigger, access, query),
      updateTrigger: Effect.fnUntraced(function* (access, id, patch) {
        const at = yield* now
        return yield* write((): Result.Result<Trigger.Trigger, Storage.NotFound | Storage.Conflict> => {
          const row = visible(sql.triggerById.get(id), access, "trigger", id)
          if (Result.isFailure(row)) return Result.fail(row.failure)
          const trigger = rows.toTrigger(row.success)
          if (trigger.deletedAt !== null) {
            return Result.fail(new Storage.Conflict({ message: `trigger ${id} is deleted` }))
          }
          const updated = Trigger.update(trigger, patch, at)
          sql.writeTrigger.run(rows.fromTrigger(updated))
          return Result.succeed(updated)
        })
      }),
      deleteTrigger: Effect.fnUntraced(function* (access, id) {
        const at = yield* now
        return yield* write(() =>
          Result.map(visible(sql.triggerById.get(id), access, "trigger", id), (row) => {
            const trigger = rows.toTrigger(row)
            if (trigger.deletedAt !== null) return trigger
            const deleted = Trigger.remove(trigger, at)
            sql.writeTrigger.run(rows.fromTrigger(deleted))
            return deleted
          })
        )
      }),
      activeTriggers: (access, workspaceId) =>
        Access.allows(access, workspaceId)
          ? attempt(() => sql.activeTriggers.all(workspaceId).map(rows.toTrigger))
          : Effect.succeed([]),

      recordSourceEvent: Effect.fnUntraced(function* (access, input) {
        const at = yield* now
        const id = yield* Id.generate("evt")
        return yield* write(() => {
          if (
            !Access.allows(access, input.workspaceId) ||
            sql.workspaceById.get(input.workspaceId) === undefined
          ) {
            return Result.fail(Storage.NotFound.of("workspace", input.workspaceId))
          }
          const stored = sql.sourceEventByDelivery.get(input.workspaceId, input.deliveryId)
          if (stored !== undefined)
            return Result.succeed({ event: rows.toSourceEvent(stored), created: false })
          const event = SourceEvent.make(id, input, at)
          sql.insertSourceEvent.run(rows.fromSourceEvent(event))
          return Result.succeed({ event, created: true })
        })
      }),
      getSourceEvent: (access, id) =>
        Effect.flatMap(
          attempt(() => sql.sourceEventById.get(id)),
          (row) => Effect.fromResult(Result.map(visible(row, access, "source event", id), rows.toSourceEvent))
        ),

      createToken: Effect.fnUntraced(function* (input) {
        const token = ApiToken.make(yield* Id.generate("tok"), input, yield* now)
        return yield* write(() => {
          const missing =
            input.workspaceIds === "*"
              ? undefined
              : input.workspaceIds.find((id) => sql.workspaceById.get(id) === undefined)
          if (missing !== undefined) return Result.fail(Storage.NotFound.of("workspace", missing))
          sql.insertToken.run(rows.fromToken(token, input.tokenHash))
          if (input.workspaceIds !== "*") {
            for (const workspaceId of input.workspaceIds) sql.grantTokenWorkspace.run(token.id, workspaceId)
          }
          return Result.succeed(token)
        })
      }),
      findTokenByHash: (tokenHash) =>
        attempt(() => {
          const row = sql.tokenByHash.get(tokenHash)
          return row === undefined ? Option.none() : Option.some(rows.toToken(row))
        }),
      getToken: (access, id) =>
        Effect.flatMap(
          attempt(() => sql.tokenById.get(id)),
          (row) => {
            const token = row === undefined ? undefined : rows.toToken(row)
            return token !== undefined && ApiToken.visibleTo(access, token)
              ? Effect.succeed(token)
              : Effect.fail(Storage.NotFound.of("token", id))
          }
        ),
      listTokens: (access, query) =>
        list(Fields.tokens, rows.toToken, access, query, {
          select: tokenColumns.map((column) => `t0.${column}`).join(", ")
        }),
      revokeToken: Effect.fnUntraced(function* (access, id) {
        const at = yield* now
        return yield* write(() => {
          const row = sql.tokenById.get(id)
          const token = row === undefined ? undefined : rows.toToken(row)
          if (token === undefined || !ApiToken.visibleTo(access, token)) {
            return Result.fail(Storage.NotFound.of("token", id))
          }
          const revoked = { ...token, revokedAt: token.revokedAt ?? at }
          sql.revokeToken.run(DateTime.toEpochMillis(revoked.revokedAt), id)
          return Result.succeed(revoked)
        })
      }),

      bootstrap: Effect.fnUntraced(function* (input) {
        const at = yield* now
        const workspaceId = yield* Id.generate("wsp")
        const token = ApiToken.make(yield* Id.generate("tok"), Bootstrap.adminToken(input.token), at)
        // One IMMEDIATE transaction: processes sharing the file take turns, so only the first sees no token.
        return yield* write((): Result.Result<Bootstrap.Bootstrapped> => {
          const first = sql.oldestToken.get()
          if (first !== undefined) {
            return Result.succeed({ _tag: "Existing", first: rows.toToken(first), tokens: first.tokens })
          }
          const existing = sql.oldestWorkspace.get()
          const workspace =
            existing === undefined
              ? Workspace.make(workspaceId, input.workspace, at)
              : rows.toWorkspace(existing)
          if (existing === undefined) sql.insertWorkspace.run(rows.fromWorkspace(workspace))
          sql.insertToken.run(rows.fromToken(token, input.token.tokenHash))
          return Result.succeed({
            _tag: "Issued",
            workspace,
            createdWorkspace: existing === undefined,
            token
          })
        })
      }),

      createBuild: Effect.fnUntraced(function* (access, input) {
        const at = yield* now
        const id = yield* Id.generate("bld")
        const { build, created } = yield* write(
          (): Result.Result<
            { readonly build: Build.Build; readonly created: boolean },
            Storage.NotFound | Storage.Conflict
          > => {
            const row = visible(
              sql.appVersionById.get(input.appVersionId),
              access,
              "app version",
              input.appVersionId
            )
            if (Result.isFailure(row)) return Result.fail(row.failure)
            const version = rows.toAppVersion(row.success)
            if (version.status !== "ready") {
              return Result.fail(
                new Storage.Conflict({ message: `app version ${version.id} is ${version.status}, not ready` })
              )
            }
            const key = input.idempotencyKey ?? null
            const sourceEventId = input.sourceEventId ?? null
            if (sourceEventId !== null) {
              const event = sql.sourceEventById.get(sourceEventId)
              if (event === undefined || event.workspace_id !== version.workspaceId) {
                return Result.fail(Storage.NotFound.of("source event", sourceEventId))
              }
            }
            const existing = earliest(
              key === null ? undefined : sql.buildByIdempotencyKey.get(version.workspaceId, key),
              sourceEventId === null ? undefined : sql.buildBySourceEvent.get(version.appId, sourceEventId)
            )
            if (existing !== undefined) {
              const stored = rows.toBuild(existing)
              // A key names one request: reusing it for another version is a mistake, not a retry.
              if (key !== null && stored.idempotencyKey === key && stored.appVersionId !== version.id) {
                return Result.fail(
                  new Storage.Conflict({
                    message: "the idempotency key was used for a different app version"
                  })
                )
              }
              return Result.succeed({ build: stored, created: false })
            }
            const sequence = sql.nextBuildSequence.get(version.appId)!.build_sequence
            const build = Build.make(id, version, sequence, input, at)
            sql.insertBuild.run(rows.fromBuild(build))
            return Result.succeed({ build, created: true })
          }
        )
        if (created) yield* publish(Storage.buildChanged(build))
        return build
      }),
      getBuild: (access, id) =>
        Effect.flatMap(
          attempt(() => sql.buildWithSteps.get(id)),
          (row) =>
            Effect.fromResult(
              Result.map(visible(row, access, "build", id), (row) => ({
                ...rows.toBuild(row),
                steps: (JSON.parse(row.steps) as Array<rows.BuildStepRow>).map(rows.toBuildStep)
              }))
            )
        ),
      listBuilds: (access, query) => list(Fields.builds, rows.toBuild, access, query),

      claimNext: Effect.fnUntraced(function* (request) {
        const at = yield* now
        const leaseExpiresAt = DateTime.add(at, { milliseconds: request.leaseMs })
        const claimed = yield* write(() => {
          const active: Claim.ActiveCounts = Claim.hasCaps(request.limits)
            ? { byWorkspace: counts(sql.activeByWorkspace.all()), byApp: counts(sql.activeByApp.all()) }
            : { byWorkspace: new Map(), byApp: new Map() }
          // Claim.select stops reading as soon as it has `max`; the generator closes the cursor with it.
          const queued = function* () {
            for (const row of sql.queuedOldestFirst.iterate()) yield rows.toBuild(row)
          }
          const picked = Claim.select(queued(), active, request.max, request.limits)
          const builds: Array<Build.Build> = []
          for (const build of picked) {
            const next = BuildState.transition(build, {
              _tag: "Claim",
              at,
              owner: request.owner,
              attempt: build.attempt + 1,
              leaseExpiresAt
            })
            if (Result.isSuccess(next)) builds.push(writeState(build, next.success))
          }
          return Result.succeed(builds)
        })
        yield* PubSub.publishAll(changes, claimed.map(Storage.buildChanged))
        return claimed
      }),
      heartbeat: Effect.fnUntraced(function* (id, fence, leaseMs) {
        const at = yield* now
        return yield* write(() =>
          Result.map(fenced(id, fence), (build) =>
            writeState(build, { ...build, leaseExpiresAt: DateTime.add(at, { milliseconds: leaseMs }) })
          )
        )
      }),
      transition: Effect.fnUntraced(function* (id, event) {
        const build = yield* write(() => applyEvent(id, event))
        yield* publish(Storage.buildChanged(build))
        return build
      }),
      requestCancel: Effect.fnUntraced(function* (access, id, reason) {
        const at = yield* now
        const outcome = yield* write(() =>
          Result.flatMap(visible(sql.buildById.get(id), access, "build", id), (row) => {
            const build = rows.toBuild(row)
            if (build.phase === "stopped") return Result.succeed({ build, accepted: false })
            return Result.map(BuildState.transition(build, { _tag: "Cancel", at, reason }), (next) => ({
              build: writeState(build, next),
              accepted: true
            }))
          })
        ).pipe(
          // Any build that has not stopped accepts a cancel request.
          Effect.catchTag(["InvalidTransition", "LeaseLost"], Effect.die)
        )
        if (outcome.accepted) yield* publish(Storage.buildChanged(outcome.build))
        return outcome
      }),
      reapExpired: Effect.fnUntraced(function* () {
        const at = yield* now
        const { reaped, published } = yield* write(() => {
          const stopped: Array<Build.Build> = []
          const published: Array<Storage.Change> = []
          for (const row of sql.expiredLeases.all(DateTime.toEpochMillis(at))) {
            const build = rows.toBuild(row)
            const next = BuildState.transition(build, { _tag: "LeaseExpired", at })
            if (Result.isFailure(next)) continue
            // In the same transaction: the line and the stop are stored together, once.
            const lastSeq = sql.logStats.get(build.id)?.last_seq ?? 0
            const line = BuildState.reapedLine(build, next.success, lastSeq + 1)
            const appended = appendToLog(build, [line], at)
            if (Result.isFailure(appended)) return Result.fail(appended.failure)
            stopped.push(writeState(build, next.success))
            if (appended.success !== undefined) published.push(appended.success)
            published.push(Storage.buildChanged(next.success))
          }
          return Result.succeed({ reaped: stopped, published })
        }).pipe(
          // The line continues the log as this transaction reads it: it cannot miss.
          Effect.catchTag("LogSequenceGap", Effect.die)
        )
        yield* PubSub.publishAll(changes, published)
        return reaped
      }),

      recordStep: (id, fence, step) =>
        write(() =>
          Result.map(fenced(id, fence), () => {
            sql.upsertStep.run(rows.fromBuildStep(id, step))
          })
        ),
      appendLogs: Effect.fnUntraced(function* (id, fence, lines) {
        const at = yield* now
        const appended = yield* write(() => appendLines(id, fence, lines, at))
        if (appended !== undefined) yield* publish(appended)
      }),
      // One transaction: the lines and every state change are stored together or not at all.
      appendAndTransition: Effect.fnUntraced(function* (id, fence, lines, [first, ...rest]) {
        const at = yield* now
        const { appended, build } = yield* write(() =>
          Result.flatMap(
            lines.length === 0 ? Result.succeed(undefined) : appendLines(id, fence, lines, at),
            (appended) => {
              let applied = applyEvent(id, first)
              for (const event of rest) applied = Result.flatMap(applied, () => applyEvent(id, event))
              return Result.map(applied, (build) => ({ appended, build }))
            }
          )
        )
        yield* PubSub.publishAll(changes, [
          ...(appended === undefined ? [] : [appended]),
          Storage.buildChanged(build)
        ])
        return build
      }),
      readLogs: (access, id, afterSeq, limit) =>
        read(() =>
          Result.map(visible(sql.buildWorkspace.get(id), access, "build", id), () => {
            const statsRow = sql.logStats.get(id)
            const stats = statsRow === undefined ? LogBudget.emptyStats : rows.toLogStats(statsRow)
            // SQLite reads a negative LIMIT as "no limit".
            const stored = sql.logLinesAfter.all(id, afterSeq, Math.max(0, limit)).map(rows.toLogLine)
            return {
              lines: LogBudget.page(stored, stats, afterSeq, limit),
              truncated: stats.droppedLines > 0,
              lastSeq: stats.lastSeq
            }
          })
        ),

      changes: Effect.map(PubSub.subscribe(changes), Stream.fromSubscription)
    }
    return storage
  })

/** The SQLite storage as a layer; the database is closed when the layer is released. */
export const layer = (options: Options): Layer.Layer<Storage.Storage, StorageError.StorageError> =>
  Layer.effect(Storage.Storage, make(options))

/** Active-build counts keyed by workspace or app, as `Claim.select` takes them. */
const counts = (grouped: ReadonlyArray<{ readonly key: string; readonly active: number }>) =>
  new Map(grouped.map(({ key, active }) => [key, active]))

/**
 * Of the builds an idempotency key and a source event point at, the one created first: it is the build
 * the first of those requests created, which every repeat of either answers with.
 */
const earliest = (a: rows.BuildRow | undefined, b: rows.BuildRow | undefined): rows.BuildRow | undefined =>
  a === undefined || b === undefined
    ? (a ?? b)
    : a.created_at < b.created_at || (a.created_at === b.created_at && a.id <= b.id)
      ? a
      : b
