/**
 * The SQLite storage's queries: every entity's reads, writes and lists, each one synchronous transaction
 * or one statement. (The build lifecycle is core's, over `transaction.ts`.)
 */
import {
  Access,
  ApiToken,
  App,
  AppVersion,
  Bootstrap,
  Event,
  Fields,
  Id,
  type Query,
  SourceEvent,
  Storage,
  Trigger,
  Workspace
} from "@kiln/core"
import { SqlRows as rows, Sql, type StorageDriver } from "@kiln/core/adapter"
import type Database from "better-sqlite3"
import { Clock, DateTime, Effect, Option, Result } from "effect"
import { attempt, type Connection, immediate } from "./connection.ts"
import { makeDeliveryQueries } from "./deliveries.ts"
import { insertEvents, makeEventQueries } from "./events.ts"
import { type prepareStatements, tokenColumns } from "./statements.ts"
import { visible } from "./visible.ts"
import { makeWebhookQueries } from "./webhooks.ts"

export const makeQueries = (
  db: Connection,
  sql: ReturnType<typeof prepareStatements>,
  now: Effect.Effect<DateTime.Utc>
): StorageDriver.Queries => {
  const write = <A, E>(body: () => Result.Result<A, E>) => immediate(db, body)

  /** Stores the event of a version that became ready or failed, in the transaction that made it so. */
  const announce = (eventId: Id.EventId, version: AppVersion.AppVersion) => {
    const event = Event.forAppVersion(eventId, version)
    if (event !== undefined) insertEvents(sql, [event])
  }

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
  const list = <Row, Name extends string, Raw>(
    table: Fields.Table<Row, Name>,
    toDomain: (raw: Raw) => Row,
    access: Access.Access,
    query: Query.ListQuery<Name>,
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
        exists: (statement) => attempt(() => prepared(statement.text).get(...bound(statement)) !== undefined)
      },
      options
    )

  return {
    ping: attempt(() => sql.ping.get()),
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
      const eventId = yield* Id.generate("msg")
      return yield* write(() =>
        Result.map(visible(sql.appById.get(input.appId), access, "app", input.appId), (app) => {
          const version = AppVersion.make(id, app.workspace_id as Id.WorkspaceId, input, at)
          sql.insertAppVersion.run(rows.fromAppVersion(version))
          announce(eventId, version)
          return version
        })
      )
    }),
    resolveAppVersion: Effect.fnUntraced(function* (access, id, resolution) {
      const at = yield* now
      const eventId = yield* Id.generate("msg")
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
        announce(eventId, resolved)
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
        if (stored !== undefined) return Result.succeed({ event: rows.toSourceEvent(stored), created: false })
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
        select: (alias) => tokenColumns.map((column) => `${alias}.${column}`).join(", ")
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
    takeLease: (name, owner, ms) =>
      Effect.flatMap(Clock.currentTimeMillis, (at) =>
        write(() => Result.succeed(sql.takeLease.run({ name, owner, now: at, ms }).changes === 1))
      ),

    ...makeEventQueries(db, sql),
    ...makeWebhookQueries(db, sql, now),
    ...makeDeliveryQueries(db, sql, now)
  }
}
