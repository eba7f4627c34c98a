/**
 * Request decoding failures as `400 {"error": "invalid_request", "message": "payload.source.type: …"}`,
 * naming where in the request the first problem is and listing every problem in `details`. An answer that
 * fails its own schema is the server's fault: a 500, never a 400 that blames the request.
 */
import { isUtf8 } from "node:buffer"
import { Filter } from "@kiln/core"
import { Effect, SchemaIssue } from "effect"
import { HttpMethod, HttpServerRequest } from "effect/http"
import { type HttpApiEndpoint, type HttpApiError, HttpApiMiddleware } from "effect/http-api"
import { RequestErrors } from "../Api.ts"
import * as ApiError from "../ApiError.ts"

const format = SchemaIssue.makeFormatterStandardSchemaV1()

/** Every problem of a decoding failure, each with the path to it from `root`. */
export const issuesOf = (root: string, issue: SchemaIssue.Issue) =>
  format(issue).issues.map((issue) => ({
    path: Filter.pathOf(root, (issue.path ?? []) as ReadonlyArray<PropertyKey>),
    message: issue.message.replace(/^Expected /, "expected ")
  }))

export const notUtf8 = "payload: the body is not valid UTF-8"

/** The media type HttpApi decodes a body under: its content-type's, or JSON when it names none. */
const mediaTypeOf = (contentType: string | undefined) =>
  (contentType ?? "application/json").toLowerCase().split(";")[0]!.trim()

/**
 * Runs `httpEffect` unless the endpoint is about to decode the request's body as JSON and it is not valid
 * UTF-8, which fails with `refusal`: HttpApi decodes with replacement characters, which would store
 * something other than what the client sent. The request caches the bytes it read (within the body
 * limit), so HttpApi decodes these same bytes. The authorization middlewares run it once the caller is
 * known, so no body is read for an anonymous one.
 */
export const refusingNonUtf8 = <A, E, R, F>(
  httpEffect: Effect.Effect<A, E, R>,
  endpoint: HttpApiEndpoint.Top,
  /** Made only when a body is refused: building an error on every request costs more than the check. */
  refusal: () => F
): Effect.Effect<A, E | F, R | HttpServerRequest.HttpServerRequest> =>
  HttpServerRequest.HttpServerRequest.use((request) =>
    HttpMethod.hasBody(request.method) &&
    endpoint.payload.get(mediaTypeOf(request.headers["content-type"]))?.encoding._tag === "Json"
      ? Effect.flatMap(
          Effect.orDie(request.arrayBuffer),
          (bytes): Effect.Effect<A, E | F, R> => (isUtf8(bytes) ? httpEffect : Effect.fail(refusal()))
        )
      : httpEffect
  )

/**
 * A schema error in what the server was answering (its body or headers) dies, so the router's guard
 * answers 500 with a request id and logs the cause; one in the request goes to `badRequest`.
 */
export const transform =
  <E>(badRequest: (error: HttpApiError.HttpApiSchemaError) => Effect.Effect<never, E>) =>
  (error: HttpApiError.HttpApiSchemaError) =>
    error.kind === "Body" || error.kind === "ResponseHeaders" ? Effect.die(error) : badRequest(error)

export const layer = HttpApiMiddleware.layerSchemaErrorTransform(
  RequestErrors,
  transform((error) => {
    const root = error.kind.toLowerCase()
    const issues = issuesOf(root, error.cause.issue)
    const [first] = issues
    return Effect.fail(
      ApiError.badRequest(
        "invalid_request",
        first === undefined ? `${root}: invalid` : `${first.path}: ${first.message}`,
        issues
      )
    )
  })
)
