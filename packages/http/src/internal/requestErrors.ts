/**
 * Request decoding failures as `400 {"error": "invalid_request", "message": "payload.source.type: …"}`,
 * naming where in the request the first problem is and listing every problem in `details`. An answer that
 * fails its own schema is the server's fault: a 500, never a 400 that blames the request.
 */
import { Filter } from "@kiln/core"
import { Effect, SchemaIssue } from "effect"
import { type HttpApiError, HttpApiMiddleware } from "effect/http-api"
import { RequestErrors } from "../Api.ts"
import * as ApiError from "../ApiError.ts"

const format = SchemaIssue.makeFormatterStandardSchemaV1()

/** Every problem of a decoding failure, each with the path to it from `root`. */
export const issuesOf = (root: string, issue: SchemaIssue.Issue) =>
  format(issue).issues.map((issue) => ({
    path: Filter.pathOf(root, (issue.path ?? []) as ReadonlyArray<PropertyKey>),
    message: issue.message.replace(/^Expected /, "expected ")
  }))

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
