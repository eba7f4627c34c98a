/**
 * `/api/builds`: list, create (idempotent with `Idempotency-Key`), get with steps, cancel, and log pages.
 */
import { BuildState, Fields, LogCursor, Storage } from "@kiln/core"
import { Effect } from "effect"
import { HttpServerResponse } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal, KilnApi } from "../Api.ts"
import * as ApiError from "../ApiError.ts"
import { requireRole } from "./authorization.ts"
import { fromQuery, fromStorage, fromStorageWrite } from "./errors.ts"
import { canonicalId } from "./ids.ts"
import { list } from "./lists.ts"
import { plainText } from "./logText.ts"
import * as LogTickets from "./logTickets.ts"
import { positiveIntParam } from "./queryParams.ts"
import { buildDetailJson, buildPage } from "./views.ts"

const maxLogLines = 10_000

const logLimit = (text: string | undefined) => positiveIntParam("limit", text, 1000, maxLogLines)

export const layer = HttpApiBuilder.group(KilnApi, "builds", (handlers) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    return handlers
      .handle("list", ({ query }) => Effect.map(list(Fields.builds, query, storage.listBuilds), buildPage))
      .handle("create", ({ payload, headers }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("write")
          const appVersionId = yield* fromStorage(canonicalId("ver", payload.appVersionId))
          return yield* fromStorageWrite(
            storage.createBuild(principal.access, {
              appVersionId,
              trigger: "manual",
              createdBy: principal.name,
              metadata: payload.metadata ?? {},
              idempotencyKey: headers["idempotency-key"] ?? null
            })
          )
        })
      )
      .handle("get", ({ params }) =>
        Effect.flatMap(Effect.service(CurrentPrincipal), (principal) =>
          fromStorage(
            Effect.flatMap(canonicalId("bld", params.id), (id) => storage.getBuild(principal.access, id))
          ).pipe(Effect.map((build) => HttpServerResponse.jsonUnsafe(buildDetailJson(build))))
        )
      )
      .handle("cancel", ({ params, payload }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("write")
          const id = yield* fromStorage(canonicalId("bld", params.id))
          const { accepted, build } = yield* fromStorage(
            storage.requestCancel(principal.access, id, payload?.reason ?? null)
          )
          // The documented answer is `{success}`; a refusal says why beside it, still a 200.
          return accepted
            ? { success: true }
            : {
                success: false,
                message: `build ${build.id} has already stopped (${BuildState.toStatus(BuildState.stateOf(build))}): there is nothing to cancel`
              }
        })
      )
      .handle("redeploy", ({ params }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("write")
          const id = yield* fromStorage(canonicalId("bld", params.id))
          const build = yield* fromStorage(storage.getBuild(principal.access, id))
          // The same version again, with what the first build was told (a trigger's settings included).
          return yield* fromStorageWrite(
            storage.createBuild(principal.access, {
              appVersionId: build.appVersionId,
              trigger: "redeploy",
              createdBy: principal.name,
              metadata: { ...build.metadata, redeployOf: build.id },
              triggerMetadata: build.triggerMetadata
            })
          )
        })
      )
      .handle("logs", ({ params, query }) =>
        Effect.gen(function* () {
          const principal = yield* Effect.service(CurrentPrincipal)
          const after = yield* fromQuery(Effect.fromResult(LogCursor.decode(query.cursor)))
          // Decoded where storage would answer for a missing build: after the other parameters.
          const buildId = fromStorage(canonicalId("bld", params.id))
          // As text, the whole log unless a limit is asked for.
          if (query.format === "text") {
            const limit = query.limit === undefined ? undefined : yield* logLimit(query.limit)
            const id = yield* buildId
            const text = yield* fromStorage(plainText(storage, principal.access, id, after, limit))
            if (text.expiredAt !== null) return yield* ApiError.Gone.logsExpired(id, text.expiredAt)
            return text.response
          }
          const limit = yield* logLimit(query.limit)
          const id = yield* buildId
          // The build first: if it had stopped then, the log read after holds its last line.
          const build = yield* fromStorage(storage.getBuild(principal.access, id))
          const page = yield* fromStorage(storage.readLogs(principal.access, id, after, limit))
          // No lines because retention took them, not because the build printed none: say so.
          if (page.expiredAt !== null) return yield* ApiError.Gone.logsExpired(id, page.expiredAt)
          const last = page.lines.at(-1)?.seq ?? after
          return {
            data: page.lines,
            cursor: LogCursor.encode(last),
            truncated: page.truncated,
            complete: build.phase === "stopped" && last >= page.lastSeq
          }
        })
      )
      .handle("logTicket", ({ params }) =>
        Effect.gen(function* () {
          const principal = yield* Effect.service(CurrentPrincipal)
          const { ticket, expiresAt } = yield* LogTickets.issue(
            principal,
            fromStorage(
              Effect.flatMap(canonicalId("bld", params.id), (id) => storage.getBuild(principal.access, id))
            )
          )
          return { ticket, url: yield* LogTickets.streamUrl(ticket), expiresAt }
        })
      )
  })
)
