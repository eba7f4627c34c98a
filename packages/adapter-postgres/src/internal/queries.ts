/**
 * The PostgreSQL storage's queries: every entity's reads, writes and lists, each one statement or one
 * transaction that locks the rows it reads. (The build lifecycle is core's, over `transaction.ts`; the
 * feed, the endpoints and their deliveries are in `events.ts`, `webhooks.ts` and `deliveries.ts`.)
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
import { Clock, DateTime, Effect, Option } from "effect"
import { visible } from "./access.ts"
import { type Database, lockKey, type Run } from "./connection.ts"
import { makeDeliveryQueries } from "./deliveries.ts"
import { insertEventsOn, makeEventQueries } from "./events.ts"
import { valuesOf } from "./sql.ts"
import { statements, tokenInsertColumns, triggerWriteColumns } from "./statements.ts"
import type { Notify } from "./transaction.ts"
import { makeWebhookQueries } from "./webhooks.ts"

export const makeQueries = (db: Database, schema: string, notify: Notify): StorageDriver.Queries => {
  const { run, transaction } = db
  const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))

  /** An app's row, visible to the caller: versions and triggers are created under it. */
  const appRow = (access: Access.Access, id: string) =>
    Effect.flatMap(run<rows.AppRow>(statements.appById, [id]), visible(access, "app", id))

  const list = <Row, Name extends string, Raw>(
    table: Fields.Table<Row, Name>,
    toDomain: (raw: Raw) => Row,
    access: Access.Access,
    query: Query.ListQuery<Name>,
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

  const queries: StorageDriver.Queries = {
    ping: Effect.asVoid(run(statements.ping, [])),
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
    getApp: (access, id) => Effect.map(appRow(access, id), rows.toApp),
    listApps: (access, query) => list(Fields.apps, rows.toApp, access, query),

    createAppVersion: Effect.fnUntraced(function* (access, input) {
      const at = yield* now
      const id = yield* Id.generate("ver")
      const app = yield* appRow(access, input.appId)
      const version = AppVersion.make(id, app.workspace_id as Id.WorkspaceId, input, at)
      const event = Event.forAppVersion(yield* Id.generate("msg"), version)
      const insert = (tx: Run) =>
        tx(statements.insertAppVersion, valuesOf(rows.fromAppVersion(version), rows.appVersionColumns))
      // A version created ready announces it in its own transaction.
      yield* event === undefined
        ? insert(run)
        : transaction((tx) => Effect.andThen(insert(tx), insertEventsOn(tx, notify)([event])))
      return version
    }),
    resolveAppVersion: Effect.fnUntraced(function* (access, id, resolution) {
      const at = yield* now
      const eventId = yield* Id.generate("msg")
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
          const after = AppVersion.resolve(version, resolution, at)
          const resolved = rows.fromAppVersion(after)
          yield* tx(statements.resolveAppVersion, [
            id,
            resolved.status,
            resolved.source,
            resolved.commit_sha,
            resolved.error,
            resolved.updated_at
          ])
          const event = Event.forAppVersion(eventId, after)
          if (event !== undefined) yield* insertEventsOn(tx, notify)([event])
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
      const app = yield* appRow(access, input.appId)
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
        select: (alias) => rows.tokenColumns.map((column) => `${alias}.${column}`).join(", ")
      }),
    revokeToken: Effect.fnUntraced(function* (access, id) {
      const at = yield* now
      const token = yield* queries.getToken(access, id)
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
    pruneEvents: (before, limit) =>
      Effect.map(
        run<{ readonly pruned: string }>(statements.pruneEvents, [DateTime.toEpochMillis(before), limit]),
        ([row]) => Number(row?.pruned ?? 0)
      ),
    takeLease: (name, owner, ms) =>
      Effect.map(run(statements.takeLease, [name, owner, ms]), (held) => held.length === 1),

    ...makeEventQueries(run),
    ...makeWebhookQueries(db, notify),
    ...makeDeliveryQueries(db, notify)
  }
  return queries
}
