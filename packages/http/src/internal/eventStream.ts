/**
 * `GET /api/events/stream?after=&types=&workspace_id=`: the event feed over a WebSocket. Each event is one
 * JSON text message, as `GET /api/events` shows it (with its `cursor`): those after `after` first, then new
 * ones as they are written (`Events.stream`), in feed order, so a client that reconnects with the last
 * cursor it received misses nothing and sees nothing twice.
 *
 * The token comes as the `Authorization` header or the `bearer.<token>` subprotocol; refusals (401, 400,
 * 404, and 426 to a plain GET) are answered before the upgrade. A follower that stops reading gets
 * backpressure, then 4008 with the cursor to resume from; one whose token is revoked or expires while it
 * follows is closed with 4403 or 4401 (`follower.ts`).
 */
import { Authenticator, Event, Events, Storage } from "@kiln/core"
import { Effect, Redacted, Stream } from "effect"
import { HttpRouter, HttpServerRequest } from "effect/http"
import * as ApiError from "../ApiError.ts"
import { authenticate } from "./authorization.ts"
import { feedParams } from "./events.ts"
import {
  answeringRefusals,
  type Connection,
  credentialOf,
  isUpgrade,
  type Limits,
  serve,
  sessionPrincipal,
  tokenEnded,
  upgradeRequired
} from "./follower.ts"
import { narrowedTo } from "./workspaces.ts"

const follow = (
  storage: Storage.StorageShape,
  authenticator: Authenticator.AuthenticatorShape,
  limits: Limits
) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (!isUpgrade(request)) return upgradeRequired
    const credential = credentialOf(request.headers)
    const principal = yield* credential === undefined
      ? sessionPrincipal(storage, request)
      : authenticate(authenticator, Redacted.make(credential), ApiError.Unauthorized.instance)
    const query = new URL(request.url, "http://kiln").searchParams
    const params = yield* feedParams({
      after: query.get("after") ?? undefined,
      types: query.get("types") ?? undefined
    })
    const access = yield* narrowedTo(storage, principal.access, query.get("workspace_id") ?? undefined)

    let last = params.after
    const following = (connection: Connection) =>
      Events.stream(access, params).pipe(
        // A page at a time: its messages leave together, and storage is read again only once they are sent.
        Stream.runForEachArray((events) =>
          connection.batch(
            Effect.forEach(
              events,
              (event) =>
                Effect.map(connection.send(JSON.stringify(Event.toJson(event))), () => {
                  last = event.cursor
                }),
              { discard: true }
            )
          )
        ),
        Effect.provideService(Storage.Storage, storage)
      )
    return yield* serve(
      request,
      limits,
      following,
      () =>
        last === null ? "slow consumer: resume from the start" : `slow consumer: resume from cursor ${last}`,
      tokenEnded({ storage, authenticator, principal, credential, limits })
    )
  }).pipe(Effect.scoped, answeringRefusals)

/** The feed's WebSocket route, with its services taken when added. */
export const route = (limits: Limits) =>
  HttpRouter.use((router) =>
    Effect.gen(function* () {
      const handler = follow(yield* Storage.Storage, yield* Authenticator.Authenticator, limits)
      yield* router.add("GET", "/api/events/stream", handler)
    })
  )
