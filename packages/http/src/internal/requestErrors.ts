/**
 * Request decoding failures as `400 {"error": "invalid_request", "message": "payload.source.type: …"}`,
 * naming where in the request the first problem is and listing every problem in `details`.
 */
import { Filter } from "@kiln/core"
import { Effect, SchemaIssue } from "effect"
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
