/**
 * The in-memory reference Storage. Every operation reads the clock first and then does all of its
 * reading and writing in one synchronous step, so concurrent fibers see each operation as atomic, the
 * way a transaction would make them.
 */
import { Clock, DateTime, Effect, Option, PubSub, Result, Semaphore, Stream } from "effect"
import * as Access from "../Access.ts"
import * as ApiToken from "../ApiToken.ts"
import * as App from "../App.ts"
import * as AppVersion from "../AppVersion.ts"
import * as Bootstrap from "../Bootstrap.ts"
import * as Build from "../Build.ts"
import * as BuildState from "../BuildState.ts"
import { buildChanged, type Change } from "../Change.ts"
import * as Claim from "../Claim.ts"
import * as Evaluator from "../Evaluator.ts"
import * as Fields from "../Fields.ts"
import * as Id from "../Id.ts"
import * as LogBudget from "../LogBudget.ts"
import { byteLength, type LogLine } from "../LogLine.ts"
import type { ListQuery } from "../Query.ts"
import * as SourceEvent from "../SourceEvent.ts"
import type { StorageOptions, StorageShape } from "../Storage.ts"
import { Conflict, NotFound } from "../StorageError.ts"
import * as Trigger from "../Trigger.ts"
import * as Workspace from "../Workspace.ts"
import { appendThenTransition } from "./appendThenTransition.ts"

interface BuildLog {
  lines: Array<LogLine>
  stats: LogBudget.Stats
}

export const makeMemoryStorage = (options: StorageOptions) =>
  Effect.gen(function* () {
    const budget = options.logBudget ?? LogBudget.defaultBudget
    const changes = yield* PubSub.unbounded<Change>()
    // Writes are serialized, as a database transaction would serialize them.
    const serial = (yield* Semaphore.make(1)).withPermits(1)

    const workspaces = new Map<Id.WorkspaceId, Workspace.Workspace>()
    const apps = new Map<Id.AppId, App.App>()
    const appSequences = new Map<Id.AppId, number>()
    const versions = new Map<Id.AppVersionId, AppVersion.AppVersion>()
    const events = new Map<Id.SourceEventId, SourceEvent.SourceEvent>()
    const tokens = new Map<Id.TokenId, { token: ApiToken.ApiToken; hash: string }>()
    const triggers = new Map<Id.TriggerId, Trigger.Trigger>()
    const builds = new Map<Id.BuildId, Build.Build>()
    const steps = new Map<Id.BuildId, Array<Build.BuildStep>>()
    const logs = new Map<Id.BuildId, BuildLog>()

    const now = Clock.currentTimeMillis.pipe(Effect.map((ms) => DateTime.makeUnsafe(ms)))
    const publish = (change: Change) => PubSub.publish(changes, change)

    const visible = <A extends { readonly workspaceId: Id.WorkspaceId }>(
      map: ReadonlyMap<string, A>,
      access: Access.Access,
      entity: string,
      id: string
    ): Result.Result<A, NotFound> => {
      const row = map.get(id)
      return row !== undefined && Access.allows(access, row.workspaceId)
        ? Result.succeed(row)
        : Result.fail(NotFound.of(entity, id))
    }

    // Related rows for filters that traverse relations: to-one by the id the row holds, to-many (a
    // build's steps) from the steps map.
    const byEntity: Partial<Record<Fields.Entity, ReadonlyMap<string, unknown>>> = {
      apps,
      appVersions: versions
    }
    const resolve: Evaluator.Resolve = (table, name, row) => {
      const relation = Fields.relationOf(table, name)!
      if (relation.kind === "many") return steps.get((row as Build.Build).id) ?? []
      const holder = Object.values(table.fields).find((field) => field.column === relation.column)!
      return byEntity[relation.entity]?.get(holder.get(row) as string)
    }
    const list = <Row>(
      table: Fields.Table<Row>,
      rows: Iterable<Row>,
      access: Access.Access,
      query: ListQuery
    ) => Effect.sync(() => Evaluator.list(table, rows, access, query, resolve))

    /** Applies an event to a stored build, the way a compare-and-set write would. */
    const applyEvent = (
      id: Id.BuildId,
      event: BuildState.BuildEvent
    ): Result.Result<Build.Build, NotFound | BuildState.InvalidTransition | BuildState.LeaseLost> => {
      const build = builds.get(id)
      if (build === undefined) return Result.fail(NotFound.of("build", id))
      return Result.map(BuildState.transition(build, event), (next) => {
        builds.set(id, next)
        return next
      })
    }

    const fenced = (
      id: Id.BuildId,
      fence: BuildState.Fence
    ): Result.Result<Build.Build, NotFound | BuildState.LeaseLost> => {
      const build = builds.get(id)
      return build === undefined ? Result.fail(NotFound.of("build", id)) : BuildState.checkFence(build, fence)
    }

    /** Appends lines to a build's log, trimming it to its budget; answers the change, or none for a repeat. */
    const appendToLog = (
      build: Build.Build,
      lines: ReadonlyArray<LogLine>,
      at: DateTime.Utc
    ): Result.Result<Change | undefined, LogBudget.LogSequenceGap> => {
      const log = logs.get(build.id) ?? { lines: [], stats: LogBudget.emptyStats }
      const plan = LogBudget.planAppend(build.id, log.stats, lines, budget)
      if (plan instanceof LogBudget.LogSequenceGap) return Result.fail(plan)
      if (plan.fresh.length === 0) return Result.succeed(undefined)
      log.lines.push(...plan.fresh)
      log.stats = plan.stats
      const from = LogBudget.trimFromSeq(log.stats)
      const start = log.lines.findIndex((line) => line.seq >= from)
      const trim = LogBudget.planTrim(
        log.stats,
        plan.excessBytes,
        log.lines.slice(start).map((line) => ({ seq: line.seq, bytes: byteLength(line.text) })),
        at
      )
      if (trim !== undefined) {
        log.lines = log.lines.filter((line) => line.seq < from || line.seq > trim.deleteThroughSeq)
        log.stats = trim.stats
      }
      logs.set(build.id, log)
      return Result.succeed({
        _tag: "LogsAppended",
        buildId: build.id,
        workspaceId: build.workspaceId,
        lastSeq: log.stats.lastSeq
      })
    }

    const storage: StorageShape = {
      createWorkspace: Effect.fnUntraced(function* (input) {
        const at = yield* now
        const workspace = Workspace.make(yield* Id.generate("wsp"), input, at)
        workspaces.set(workspace.id, workspace)
        return workspace
      }, serial),
      getWorkspace: (access, id) =>
        Effect.suspend(() =>
          Access.allows(access, id) && workspaces.has(id)
            ? Effect.succeed(workspaces.get(id)!)
            : Effect.fail(NotFound.of("workspace", id))
        ),
      listWorkspaces: (access, query) => list(Fields.workspaces, workspaces.values(), access, query),

      createApp: Effect.fnUntraced(function* (access, input) {
        const at = yield* now
        const id = yield* Id.generate("app")
        if (!Access.allows(access, input.workspaceId) || !workspaces.has(input.workspaceId)) {
          return yield* NotFound.of("workspace", input.workspaceId)
        }
        for (const app of apps.values()) {
          if (app.workspaceId === input.workspaceId && app.handle === input.handle) {
            return yield* new Conflict({ message: `an app with handle ${input.handle} already exists` })
          }
        }
        const app = App.make(id, input, at)
        apps.set(id, app)
        appSequences.set(id, 0)
        return app
      }, serial),
      getApp: (access, id) => Effect.fromResult(visible(apps, access, "app", id)),
      listApps: (access, query) => list(Fields.apps, apps.values(), access, query),

      createAppVersion: Effect.fnUntraced(function* (access, input) {
        const at = yield* now
        const id = yield* Id.generate("ver")
        const app = yield* Effect.fromResult(visible(apps, access, "app", input.appId))
        const version = AppVersion.make(id, app.workspaceId, input, at)
        versions.set(id, version)
        return version
      }, serial),
      resolveAppVersion: Effect.fnUntraced(function* (access, id, resolution) {
        const at = yield* now
        const version = yield* Effect.fromResult(visible(versions, access, "app version", id))
        if (version.status !== "pending") {
          return yield* new Conflict({ message: `app version ${id} is already ${version.status}` })
        }
        const resolved = AppVersion.resolve(version, resolution, at)
        versions.set(id, resolved)
        return resolved
      }, serial),
      getAppVersion: (access, id) => Effect.fromResult(visible(versions, access, "app version", id)),
      listAppVersions: (access, query) => list(Fields.appVersions, versions.values(), access, query),

      createTrigger: Effect.fnUntraced(function* (access, input) {
        const at = yield* now
        const id = yield* Id.generate("trg")
        const app = yield* Effect.fromResult(visible(apps, access, "app", input.appId))
        const trigger = Trigger.make(id, app.workspaceId, input, at)
        triggers.set(id, trigger)
        return trigger
      }, serial),
      getTrigger: (access, id) => Effect.fromResult(visible(triggers, access, "trigger", id)),
      listTriggers: (access, query) => list(Fields.triggers, triggers.values(), access, query),
      updateTrigger: Effect.fnUntraced(function* (access, id, patch) {
        const at = yield* now
        const trigger = yield* Effect.fromResult(visible(triggers, access, "trigger", id))
        if (trigger.deletedAt !== null) return yield* new Conflict({ message: `trigger ${id} is deleted` })
        const updated = Trigger.update(trigger, patch, at)
        triggers.set(id, updated)
        return updated
      }, serial),
      deleteTrigger: Effect.fnUntraced(function* (access, id) {
        const at = yield* now
        const trigger = yield* Effect.fromResult(visible(triggers, access, "trigger", id))
        if (trigger.deletedAt !== null) return trigger
        const deleted = Trigger.remove(trigger, at)
        triggers.set(id, deleted)
        return deleted
      }, serial),
      activeTriggers: (access, workspaceId) =>
        Effect.sync(() =>
          Access.allows(access, workspaceId)
            ? [...triggers.values()].filter((t) => t.workspaceId === workspaceId && t.deletedAt === null)
            : []
        ),

      recordSourceEvent: Effect.fnUntraced(function* (access, input) {
        const at = yield* now
        const id = yield* Id.generate("evt")
        if (!Access.allows(access, input.workspaceId) || !workspaces.has(input.workspaceId)) {
          return yield* NotFound.of("workspace", input.workspaceId)
        }
        for (const event of events.values()) {
          if (event.workspaceId === input.workspaceId && event.deliveryId === input.deliveryId) {
            return { event, created: false }
          }
        }
        const event = SourceEvent.make(id, input, at)
        events.set(id, event)
        return { event, created: true }
      }, serial),
      getSourceEvent: (access, id) => Effect.fromResult(visible(events, access, "source event", id)),

      createToken: Effect.fnUntraced(function* (input) {
        const at = yield* now
        const id = yield* Id.generate("tok")
        const missing =
          input.workspaceIds === "*" ? undefined : input.workspaceIds.find((ws) => !workspaces.has(ws))
        if (missing !== undefined) return yield* NotFound.of("workspace", missing)
        const token = ApiToken.make(id, input, at)
        tokens.set(id, { token, hash: input.tokenHash })
        return token
      }, serial),
      findTokenByHash: (tokenHash) =>
        Effect.sync(() => {
          for (const entry of tokens.values()) if (entry.hash === tokenHash) return Option.some(entry.token)
          return Option.none()
        }),
      getToken: (access, id) =>
        Effect.suspend(() => {
          const entry = tokens.get(id)
          return entry !== undefined && ApiToken.visibleTo(access, entry.token)
            ? Effect.succeed(entry.token)
            : Effect.fail(NotFound.of("token", id))
        }),
      listTokens: (access, query) =>
        list(
          Fields.tokens,
          Array.from(tokens.values(), (entry) => entry.token),
          access,
          query
        ),
      revokeToken: Effect.fnUntraced(function* (access, id) {
        const at = yield* now
        const entry = tokens.get(id)
        if (entry === undefined || !ApiToken.visibleTo(access, entry.token))
          return yield* NotFound.of("token", id)
        const token = { ...entry.token, revokedAt: entry.token.revokedAt ?? at }
        tokens.set(id, { token, hash: entry.hash })
        return token
      }, serial),
      bootstrap: Effect.fnUntraced(function* (input) {
        const at = yield* now
        const first = oldest(Array.from(tokens.values(), (entry) => entry.token))
        if (first !== undefined) return { _tag: "Existing", first, tokens: tokens.size } as const
        const existing = oldest(Array.from(workspaces.values()))
        const workspace = existing ?? Workspace.make(yield* Id.generate("wsp"), input.workspace, at)
        workspaces.set(workspace.id, workspace)
        const token = ApiToken.make(yield* Id.generate("tok"), Bootstrap.adminToken(input.token), at)
        tokens.set(token.id, { token, hash: input.token.tokenHash })
        return { _tag: "Issued", workspace, createdWorkspace: existing === undefined, token } as const
      }, serial),

      createBuild: Effect.fnUntraced(function* (access, input) {
        const at = yield* now
        const id = yield* Id.generate("bld")
        const version = yield* Effect.fromResult(visible(versions, access, "app version", input.appVersionId))
        if (version.status !== "ready") {
          return yield* new Conflict({ message: `app version ${version.id} is ${version.status}, not ready` })
        }
        const key = input.idempotencyKey ?? null
        const sourceEventId = input.sourceEventId ?? null
        if (sourceEventId !== null) {
          const event = events.get(sourceEventId)
          if (event === undefined || event.workspaceId !== version.workspaceId) {
            return yield* NotFound.of("source event", sourceEventId)
          }
        }
        for (const existing of builds.values()) {
          if (
            key !== null &&
            existing.workspaceId === version.workspaceId &&
            existing.idempotencyKey === key
          ) {
            if (existing.appVersionId !== version.id) {
              return yield* new Conflict({
                message: "the idempotency key was used for a different app version"
              })
            }
            return existing
          }
          if (
            sourceEventId !== null &&
            existing.entityId === version.appId &&
            existing.sourceEventId === sourceEventId
          ) {
            return existing
          }
        }
        const sequenceNumber = (appSequences.get(version.appId) ?? 0) + 1
        appSequences.set(version.appId, sequenceNumber)
        const build = Build.make(id, version, sequenceNumber, input, at)
        builds.set(id, build)
        steps.set(id, [])
        yield* publish(buildChanged(build))
        return build
      }, serial),
      getBuild: (access, id) =>
        Effect.map(Effect.fromResult(visible(builds, access, "build", id)), (build) => ({
          ...build,
          steps: steps.get(id) ?? []
        })),
      listBuilds: (access, query) => list(Fields.builds, builds.values(), access, query),

      claimNext: Effect.fnUntraced(function* (request) {
        const at = yield* now
        const leaseExpiresAt = DateTime.add(at, { milliseconds: request.leaseMs })
        const byWorkspace = new Map<string, number>()
        const byApp = new Map<string, number>()
        const queued: Array<Build.Build> = []
        for (const build of builds.values()) {
          if (build.phase === "queued") queued.push(build)
          else if (BuildState.isActive(build.phase)) {
            byWorkspace.set(build.workspaceId, (byWorkspace.get(build.workspaceId) ?? 0) + 1)
            byApp.set(build.entityId, (byApp.get(build.entityId) ?? 0) + 1)
          }
        }
        queued.sort(
          (a, b) =>
            DateTime.toEpochMillis(a.createdAt) - DateTime.toEpochMillis(b.createdAt) ||
            (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
        )
        const claimed: Array<Build.Build> = []
        for (const candidate of Claim.select(queued, { byWorkspace, byApp }, request.max, request.limits)) {
          const next = applyEvent(candidate.id, {
            _tag: "Claim",
            at,
            owner: request.owner,
            attempt: candidate.attempt + 1,
            leaseExpiresAt
          })
          if (Result.isSuccess(next)) claimed.push(next.success)
        }
        yield* PubSub.publishAll(changes, claimed.map(buildChanged))
        return claimed
      }, serial),
      heartbeat: Effect.fnUntraced(function* (id, fence, leaseMs) {
        const at = yield* now
        const build = yield* Effect.fromResult(fenced(id, fence))
        const renewed = { ...build, leaseExpiresAt: DateTime.add(at, { milliseconds: leaseMs }) }
        builds.set(id, renewed)
        return renewed
      }, serial),
      transition: Effect.fnUntraced(function* (id, event) {
        const build = yield* Effect.fromResult(applyEvent(id, event))
        yield* publish(buildChanged(build))
        return build
      }, serial),
      requestCancel: Effect.fnUntraced(function* (access, id, reason) {
        const at = yield* now
        const build = yield* Effect.fromResult(visible(builds, access, "build", id))
        if (build.phase === "stopped") return { build, accepted: false }
        const next = yield* Effect.fromResult(applyEvent(id, { _tag: "Cancel", at, reason })).pipe(
          Effect.orDie
        )
        yield* publish(buildChanged(next))
        return { build: next, accepted: true }
      }, serial),
      reapExpired: Effect.fnUntraced(function* () {
        const at = yield* now
        const reaped: Array<Build.Build> = []
        const published: Array<Change> = []
        for (const build of builds.values()) {
          if (
            BuildState.isActive(build.phase) &&
            build.leaseExpiresAt !== null &&
            !DateTime.isLessThan(at, build.leaseExpiresAt)
          ) {
            const next = applyEvent(build.id, { _tag: "LeaseExpired", at })
            if (Result.isFailure(next)) continue
            const lastSeq = logs.get(build.id)?.stats.lastSeq ?? 0
            // The next seq continues the log: the append cannot miss.
            const appended = yield* Effect.orDie(
              Effect.fromResult(
                appendToLog(build, [BuildState.reapedLine(build, next.success, lastSeq + 1)], at)
              )
            )
            reaped.push(next.success)
            if (appended !== undefined) published.push(appended)
            published.push(buildChanged(next.success))
          }
        }
        yield* PubSub.publishAll(changes, published)
        return reaped
      }, serial),

      recordStep: Effect.fnUntraced(function* (id, fence, step) {
        yield* Effect.fromResult(fenced(id, fence))
        const list = (steps.get(id) ?? []).filter((existing) => existing.index !== step.index)
        list.push(step)
        list.sort((a, b) => a.index - b.index)
        steps.set(id, list)
      }, serial),
      appendLogs: Effect.fnUntraced(function* (id, fence, lines) {
        const at = yield* now
        const build = yield* Effect.fromResult(fenced(id, fence))
        const appended = yield* Effect.fromResult(appendToLog(build, lines, at))
        if (appended !== undefined) yield* publish(appended)
      }, serial),
      appendAndTransition: (id, fence, lines, events) =>
        appendThenTransition(storage)(id, fence, lines, events),
      readLogs: (access, id, afterSeq, limit) =>
        Effect.map(Effect.fromResult(visible(builds, access, "build", id)), () => {
          const log = logs.get(id) ?? { lines: [], stats: LogBudget.emptyStats }
          const stored = log.lines.filter((line) => line.seq > afterSeq).slice(0, limit)
          return {
            lines: LogBudget.page(stored, log.stats, afterSeq, limit),
            truncated: log.stats.droppedLines > 0,
            lastSeq: log.stats.lastSeq
          }
        }),

      changes: Effect.map(PubSub.subscribe(changes), Stream.fromSubscription)
    }
    return storage
  })

/** The row created first (ids break ties: they sort in creation order). */
const oldest = <A extends { readonly id: string; readonly createdAt: DateTime.Utc }>(
  rows: ReadonlyArray<A>
): A | undefined =>
  rows.reduce<A | undefined>((first, row) => {
    if (first === undefined) return row
    const order = DateTime.toEpochMillis(row.createdAt) - DateTime.toEpochMillis(first.createdAt)
    return order < 0 || (order === 0 && row.id < first.id) ? row : first
  }, undefined)
