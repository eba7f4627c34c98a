/**
 * The in-memory reference Storage: a driver over maps, with core's lifecycle on top. Every entity
 * operation reads the clock first and then does all of its reading and writing in one synchronous step,
 * so concurrent fibers see each operation as atomic, the way a transaction would make them.
 */
import { Clock, DateTime, Effect, Option, Result, Semaphore } from "effect"
import * as Access from "../Access.ts"
import * as ApiToken from "../ApiToken.ts"
import * as App from "../App.ts"
import * as AppVersion from "../AppVersion.ts"
import * as Bootstrap from "../Bootstrap.ts"
import type * as Build from "../Build.ts"
import * as Evaluator from "../Evaluator.ts"
import * as Event from "../Event.ts"
import * as Fields from "../Fields.ts"
import * as Id from "../Id.ts"
import * as LogBudget from "../LogBudget.ts"
import type { ListQuery } from "../Query.ts"
import * as SourceEvent from "../SourceEvent.ts"
import type { StorageOptions } from "../Storage.ts"
import { type Driver, makeStorage, type Queries } from "../StorageDriver.ts"
import { Conflict, NotFound } from "../StorageError.ts"
import * as Trigger from "../Trigger.ts"
import * as Workspace from "../Workspace.ts"
import { type BuildLog, transactionOn } from "./memoryTransaction.ts"
import { makeMemoryWebhooks } from "./memoryWebhooks.ts"

export const makeMemoryStorage = (options: StorageOptions) =>
  Effect.gen(function* () {
    const now = Clock.currentTimeMillis.pipe(Effect.map((ms) => DateTime.makeUnsafe(ms)))
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
    const feed: Array<Event.Stored | undefined> = []
    const leases = new Map<string, { readonly owner: string; readonly expiresAt: number }>()
    const tables = { appSequences, versions, events, builds, steps, logs, feed }
    const transaction = transactionOn(tables, now)
    /** Writes the event of a version that became ready or failed. */
    const announce = (version: AppVersion.AppVersion) =>
      Effect.flatMap(Id.generate("msg"), (id) => {
        const event = Event.forAppVersion(id, version)
        return event === undefined ? Effect.void : transaction((tx) => tx.insertEvents([event]))
      })

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

    // Related rows for filters that traverse relations: to-one by id, to-many (a build's steps) by the
    // id of the row they belong to.
    const byId: { readonly [E in Fields.Entity]?: ReadonlyMap<string, Fields.Rows[E]> } = {
      apps,
      appVersions: versions
    }
    const byOwner: { readonly [E in Fields.Entity]?: ReadonlyMap<string, ReadonlyArray<Fields.Rows[E]>> } = {
      steps
    }
    const resolve: Evaluator.Resolve = {
      one: (entity, id) => byId[entity]?.get(id),
      many: (entity, id) => byOwner[entity]?.get(id) ?? []
    }
    const list = <Row, Name extends string>(
      table: Fields.Table<Row, Name>,
      rows: Iterable<Row>,
      access: Access.Access,
      query: ListQuery<Name>
    ) => Effect.sync(() => Evaluator.list(table, rows, access, query, resolve))

    const queries: Queries = {
      ping: Effect.void,
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
        yield* announce(version)
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
        yield* announce(resolved)
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

      getBuild: (access, id) =>
        Effect.map(Effect.fromResult(visible(builds, access, "build", id)), (build) => ({
          ...build,
          steps: steps.get(id) ?? []
        })),
      listBuilds: (access, query) => list(Fields.builds, builds.values(), access, query),
      takeLease: (name, owner, ms) =>
        Effect.map(Clock.currentTimeMillis, (at) => {
          const held = leases.get(name)
          if (held !== undefined && held.owner !== owner && held.expiresAt > at) return false
          leases.set(name, { owner, expiresAt: at + ms })
          return true
        }),
      ...makeMemoryWebhooks(feed, serial)
    }
    const driver: Driver = {
      name: "memory storage",
      transaction,
      readLog: (id, afterSeq, limit) =>
        Effect.sync(() => {
          const build = builds.get(id)
          if (build === undefined) return undefined
          const log = logs.get(id) ?? { lines: [], stats: LogBudget.emptyStats, expiredAt: null }
          return {
            workspaceId: build.workspaceId,
            stats: log.stats,
            expiredAt: log.expiredAt,
            lines: log.lines.filter((line) => line.seq > afterSeq).slice(0, limit)
          }
        }),
      queries
    }
    return yield* makeStorage(driver, options)
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
