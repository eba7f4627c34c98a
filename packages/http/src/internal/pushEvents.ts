/**
 * `POST /api/events/push`: a source host reports a push. No bearer token: the raw body is signed with the
 * workspace's push secret (`PushSignature`), checked in constant time before anything is stored. The
 * event is stored once per `deliveryId` and evaluated against the workspace's triggers (`PushEvents`);
 * a redelivery answers what the first delivery made and creates nothing.
 *
 * Body: `{workspaceId, deliveryId, repository, branch?, commit?, changedPaths?, author?, message?}`;
 * unknown fields are refused. Answers 201 with `{eventId, redelivered, builds, ignored}` (200 for a
 * redelivery), 400 for a body that is not such a push or a repository Kiln would not fetch from, 401 for a
 * missing or wrong signature, 404 for a correctly signed push to a workspace that does not exist, 503 when
 * the server has no push key. The signature is checked before the workspace is looked up, so a caller
 * without the workspace's secret gets the same 401 whether or not it exists: the endpoint is no way to
 * find out which workspaces exist.
 */
import { isUtf8 } from "node:buffer"
import { Access, PushEvents, PushSignature, SourceStore, Storage } from "@kiln/core"
import { Effect, Schema } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { PushPayload } from "../Api.ts"
import * as ApiError from "../ApiError.ts"
import { refusal } from "./gitSources.ts"
import { idOf } from "./ids.ts"
import { issuesOf, notUtf8 } from "./requestErrors.ts"
import { respond } from "./responses.ts"
import { buildJson } from "./views.ts"

const decode = Schema.decodeUnknownResult(PushPayload, { onExcessProperty: "error" })

const answer = (status: number, body: object) =>
  Effect.succeed(HttpServerResponse.jsonUnsafe(body, { status }))

const receive = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const key = (yield* PushSignature.PushKey).secret
  if (key === undefined) return yield* respond(ApiError.ServiceUnavailable.pushEvents)
  const bytes = yield* request.arrayBuffer
  if (!isUtf8(bytes)) return yield* respond(ApiError.badRequest("invalid_request", notUtf8))
  const body = new TextDecoder().decode(bytes)
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch {
    return yield* respond(ApiError.badRequest("invalid_request", "the body is not JSON"))
  }
  const claimed = (json as { readonly workspaceId?: unknown } | null)?.workspaceId
  const workspaceId = typeof claimed === "string" ? idOf("wsp", claimed) : undefined
  // The signature is checked before the body is believed any further.
  if (
    workspaceId === undefined ||
    !PushSignature.verify(key, workspaceId, body, request.headers[PushSignature.header])
  ) {
    return yield* answer(401, {
      error: "unauthorized",
      message: `missing or invalid ${PushSignature.header}: sign the raw body with the workspace's push secret`
    })
  }
  const payload = decode(json)
  if (payload._tag === "Failure") {
    const [first] = issuesOf("payload", payload.failure.issue)
    return yield* respond(
      ApiError.badRequest(
        "invalid_request",
        first === undefined ? "payload: invalid" : `${first.path}: ${first.message}`
      )
    )
  }
  const push = payload.success
  // A push builds its repository: one the source store would refuse (a path on the server) builds nothing.
  const refused = refusal(
    yield* SourceStore.SourceStore,
    { url: push.repository },
    { url: "payload.repository", ref: "payload.branch" }
  )
  if (refused !== undefined) return yield* respond(ApiError.badRequest("invalid_request", refused))
  const received = yield* PushEvents.receive(
    // The signature proves the sender holds this workspace's secret: it acts within that workspace only.
    Access.workspaces([workspaceId]),
    {
      workspaceId,
      deliveryId: push.deliveryId,
      repository: push.repository,
      branch: push.branch ?? null,
      commitSha: push.commit ?? null,
      changedPaths: push.changedPaths ?? [],
      author: push.author ?? null,
      message: push.message ?? null
    }
  ).pipe(
    Effect.catchTag("StorageNotFound", () => Effect.fail(ApiError.NotFound.of("Workspace not found"))),
    Effect.catchTag("StorageError", Effect.die)
  )
  return yield* answer(received.redelivered ? 200 : 201, {
    eventId: received.event.id,
    redelivered: received.redelivered,
    builds: received.builds.map(buildJson),
    ignored: received.ignored
  })
}).pipe(Effect.catch((error) => (error instanceof ApiError.NotFound ? respond(error) : Effect.die(error))))

/** The route, with its services taken when it is added. */
export const route = HttpRouter.use((router) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const sources = yield* SourceStore.SourceStore
    yield* router.add(
      "POST",
      "/api/events/push",
      receive.pipe(
        Effect.provideService(Storage.Storage, storage),
        Effect.provideService(SourceStore.SourceStore, sources)
      )
    )
  })
)
