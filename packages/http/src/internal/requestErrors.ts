/**
 * Request decoding failures as `400 {"error": "invalid_request", "message": "payload.source.type: …"}`,
 * naming where in the request the first problem is and listing every problem in `details`.
 */
import { isUtf8 } from "node:buffer"
import { Filter } from "@kiln/core"
import { Effect, SchemaIssue } from "effect"
import { HttpMethod, HttpServerRequest } from "effect/http"
import { HttpApiMiddleware } from "effect/http-api"
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

/** HttpApi reads a body without a content-type as JSON. */
const isJson = (contentType: string | undefined) =>
  contentType === undefined || /^application\/([\w.-]+\+)?json\s*(;|$)/i.test(contentType)

/**
 * Runs `httpEffect` unless the request has a JSON body that is not valid UTF-8, which fails with
 * `refusal`: HttpApi decodes bodies with replacement characters, which would store something other than
 * what the client sent. The request caches the bytes it read, so HttpApi decodes these same bytes. The
 * authorization middlewares run it once the caller is known, so no body is read for an anonymous one.
 */
export const refusingNonUtf8 = <A, E, R, F>(
  httpEffect: Effect.Effect<A, E, R>,
  refusal: F
): Effect.Effect<A, E | F, R | HttpServerRequest.HttpServerRequest> =>
  HttpServerRequest.HttpServerRequest.use((request) =>
    HttpMethod.hasBody(request.method) && isJson(request.headers["content-type"])
      ? Effect.flatMap(
          Effect.orDie(request.arrayBuffer),
          (bytes): Effect.Effect<A, E | F, R> => (isUtf8(bytes) ? httpEffect : Effect.fail(refusal))
        )
      : httpEffect
  )

export const layer = HttpApiMiddleware.layerSchemaErrorTransform(RequestErrors, (error) => {
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
