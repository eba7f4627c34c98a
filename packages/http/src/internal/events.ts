/**
 * `GET /api/events`: a page of the feed after a cursor, in the caller's workspaces. The parameters are
 * read here for the WebSocket too (`eventStream.ts`), so both refuse the same things in the same words.
 */
import { Event, Storage } from "@kiln/core"
import { Effect, Option, Schema } from "effect"
import { HttpServerResponse } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal, KilnApi } from "../Api.ts"
import * as ApiError from "../ApiError.ts"
import { maxFeedLimit } from "./api/events.ts"
import { positiveIntParam } from "./queryParams.ts"
import { narrowedTo } from "./workspaces.ts"

/** Where a reader starts and what it reads: `after` and `types` as both feed routes take them. */
export interface FeedParams {
  readonly after: Event.Cursor | null
  readonly types: ReadonlyArray<Event.Type> | null
}

const isType = Schema.is(Event.Type)
const decodeCursor = Schema.decodeUnknownOption(Event.Cursor)

/** `after` and `types` from their text, or the 400 that names the first one wrong. */
export const feedParams = (query: {
  readonly after?: string | undefined
  readonly types?: string | undefined
}): Effect.Effect<FeedParams, ApiError.BadRequest> =>
  Effect.gen(function* () {
    const after =
      query.after === undefined
        ? null
        : (Option.getOrUndefined(decodeCursor(query.after)) ??
          (yield* ApiError.badRequest(
            "invalid_cursor",
            "after: expected an event cursor, the `cursor` of an event or of a page of the feed"
          )))
    if (query.types === undefined) return { after, types: null }
    const types: Array<Event.Type> = []
    for (const [index, name] of query.types.split(",").entries()) {
      if (!isType(name)) {
        return yield* ApiError.badRequest(
          "invalid_parameter",
          `types[${index}]: expected one of ${Event.Type.literals.join(", ")}`
        )
      }
      if (!types.includes(name)) types.push(name)
    }
    return { after, types }
  })

export const layer = HttpApiBuilder.group(KilnApi, "events", (handlers) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    return handlers.handle("list", ({ query }) =>
      Effect.gen(function* () {
        const principal = yield* Effect.service(CurrentPrincipal)
        const params = yield* feedParams(query)
        const limit = yield* positiveIntParam("limit", query.limit, 100, maxFeedLimit)
        const access = yield* narrowedTo(storage, principal.access, query.workspace_id)
        const events = yield* Effect.orDie(storage.readEvents(access, { ...params, limit }))
        // `Event.toJson` is already the view's JSON: no schema encoding per event.
        return HttpServerResponse.jsonUnsafe({
          data: events.map(Event.toJson),
          cursor: events.at(-1)?.cursor ?? params.after
        })
      })
    )
  })
)
