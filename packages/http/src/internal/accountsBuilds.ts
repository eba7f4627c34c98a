/**
 * The accounts dialect's builds: the newest build of each version or script asked for, a script's builds
 * a page at a time, one build with its trigger, its cancel, and its log.
 */
import { type Access, type Build, BuildState, Fields, Id, LogCursor, Query, Storage } from "@kiln/core"
import { DateTime, Effect, Option, Schema } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import {
  AccountsApi,
  AccountsBadRequest,
  AccountsGone,
  AccountsNotFound,
  type BuildView
} from "../AccountsApi.ts"
import { logsExpiredMessage } from "../ApiError.ts"
import { accountOf, fromStorage, notFoundAs, scriptOf, writer } from "./accountsRequests.ts"
import { buildView, iso, ok } from "./accountsViews.ts"
import { toAccounts } from "./dialectStatus.ts"
import { idOf, lookUp } from "./ids.ts"
import { positiveInt } from "./queryParams.ts"

const maxIds = 20

const decodeTriggerId = Schema.decodeUnknownOption(Id.TriggerId)

/** A comma-separated id list of at most 20. */
const idList = (parameter: string, text: string) => {
  const ids = text
    .split(",")
    .map((id) => id.trim())
    .filter((id) => id !== "")
  return ids.length === 0 || ids.length > maxIds
    ? Effect.fail(AccountsBadRequest.of(`${parameter}: expected 1 to ${maxIds} comma-separated ids`))
    : Effect.succeed(ids)
}

export const layer = HttpApiBuilder.group(AccountsApi, "accountsBuilds", (handlers) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage

    const triggerOf = (access: Access.Access, build: Build.Build) => {
      const id = decodeTriggerId(build.triggerMetadata?.triggerId)
      return Option.isSome(id)
        ? storage.getTrigger(access, id.value).pipe(
            Effect.option,
            Effect.map((o) => (o._tag === "Some" ? o.value : null))
          )
        : Effect.succeed(null)
    }
    const view = (access: Access.Access, build: Build.Build) =>
      Effect.map(Effect.orDie(triggerOf(access, build)), (trigger) => buildView(build, trigger))

    const buildOf = (access: Access.Access, text: string) =>
      fromStorage(
        lookUp("bld", text, (id) => storage.getBuild(access, id), AccountsNotFound.of("Build not found"))
      )

    /** The newest build whose `field` is `value`, in the account. */
    const latestWhere = (access: Access.Access, field: "appVersionId" | "entityId", value: string) =>
      Effect.gen(function* () {
        const query = yield* Query.fromParams(Fields.builds, access, {
          filter: JSON.stringify({ [field]: { eq: value } }),
          limit: "1"
        }).pipe(Effect.orDie)
        return (yield* Effect.orDie(storage.listBuilds(access, query))).rows[0]
      })

    /** Builds by id list: each id that has one maps to its newest build; ids with none are left out. */
    const newestBy = (
      access: Access.Access,
      prefix: "ver" | "app",
      field: "appVersionId" | "entityId",
      ids: ReadonlyArray<string>
    ) =>
      Effect.gen(function* () {
        const builds: Record<string, BuildView> = {}
        for (const text of ids) {
          const id = idOf(prefix, text)
          const build = id === undefined ? undefined : yield* latestWhere(access, field, id)
          if (build !== undefined) builds[text] = yield* view(access, build)
        }
        return ok({ builds })
      })

    return handlers
      .handle("byVersions", ({ params, query }) =>
        Effect.gen(function* () {
          const { access } = yield* accountOf(storage, params.account_id)
          return yield* newestBy(
            access,
            "ver",
            "appVersionId",
            yield* idList("version_ids", query.version_ids)
          )
        })
      )
      .handle("latest", ({ params, query }) =>
        Effect.gen(function* () {
          const { access } = yield* accountOf(storage, params.account_id)
          const ids = yield* idList("external_script_ids", query.external_script_ids)
          return yield* newestBy(access, "app", "entityId", ids)
        })
      )
      .handle("get", ({ params }) =>
        Effect.gen(function* () {
          const { access } = yield* accountOf(storage, params.account_id)
          return ok(yield* view(access, yield* buildOf(access, params.build_uuid)))
        })
      )
      .handle("cancel", ({ params }) =>
        Effect.gen(function* () {
          const { access, principal } = yield* accountOf(storage, params.account_id)
          yield* writer
          const build = yield* buildOf(access, params.build_uuid)
          const { build: after, accepted } = yield* fromStorage(
            notFoundAs(
              "Build not found",
              storage.requestCancel(access, build.id, `cancelled by ${principal.name}`)
            )
          )
          const { status, buildOutcome } = toAccounts(BuildState.stateOf(after))
          return {
            ...ok({
              build_uuid: Id.toUuid(after.id),
              status,
              build_outcome: buildOutcome,
              stopped_on: iso(after.completedAt)
            }),
            messages: !accepted
              ? [{ code: 409, message: `the build had already stopped (${buildOutcome}): nothing to cancel` }]
              : status === "stopped"
                ? []
                : [
                    {
                      code: 202,
                      message: `cancel requested: the build is ${status} until its runner has stopped it; its build_outcome follows (GET the build)`
                    }
                  ]
          }
        })
      )
      .handle("logs", ({ params, query }) =>
        Effect.gen(function* () {
          const { access } = yield* accountOf(storage, params.account_id)
          const build = yield* buildOf(access, params.build_uuid)
          const after = yield* Effect.fromResult(LogCursor.decode(query.cursor)).pipe(
            Effect.mapError((error) => AccountsBadRequest.of(`cursor: ${error.message}`))
          )
          const page = yield* Effect.orDie(storage.readLogs(access, build.id, after, 1000))
          // No lines because retention took them, not because the build printed none: say so.
          if (page.expiredAt !== null) {
            return yield* AccountsGone.of(
              `logs_expired: ${logsExpiredMessage(Id.toUuid(build.id), page.expiredAt)}`
            )
          }
          const last = page.lines.at(-1)?.seq ?? after
          // The build was read first: stopped then, every line it will have was already stored.
          const complete = build.phase === "stopped" && last >= page.lastSeq
          return ok({
            ...(complete ? {} : { cursor: LogCursor.encode(last) }),
            lines: page.lines.map((line) => [DateTime.toEpochMillis(line.ts), line.text] as const),
            truncated: page.truncated
          })
        })
      )
      .handle("byScript", ({ params, query }) =>
        Effect.gen(function* () {
          const { access } = yield* accountOf(storage, params.account_id)
          const page = yield* positive("page", query.page, 1, Number.MAX_SAFE_INTEGER)
          const perPage = yield* positive("per_page", query.per_page, 25, 200)
          const app = yield* scriptOf(storage, access, params.external_script_id)
          if (page * perPage > maxPagedRows) {
            return yield* AccountsBadRequest.of(`page: at most ${maxPagedRows} builds can be paged through`)
          }
          const listed = yield* Query.fromParams(Fields.builds, access, {
            app_id: app.id
          }).pipe(Effect.orDie)
          const result = yield* Effect.orDie(storage.listBuilds(access, { ...listed, limit: page * perPage }))
          const rows = result.rows.slice((page - 1) * perPage)
          return {
            ...ok(yield* Effect.forEach(rows, (build) => view(access, build))),
            result_info: {
              page,
              per_page: perPage,
              count: rows.length,
              total_count: result.total,
              total_pages: Math.ceil(result.total / perPage),
              next_page: page * perPage < result.total
            }
          }
        })
      )
  })
)

/** Pages are read from the newest build on: the deepest page a request may ask for ends here. */
const maxPagedRows = 10_000

const positive = (parameter: string, text: string | undefined, fallback: number, max: number) =>
  Effect.fromResult(positiveInt(parameter, text, fallback, max)).pipe(Effect.mapError(AccountsBadRequest.of))
