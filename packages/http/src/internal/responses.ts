/**
 * API errors as responses, for the routes outside the HttpApi (the log stream, unknown routes, limits).
 */
import { Effect } from "effect"
import { HttpServerResponse } from "effect/http"
import * as ApiError from "../ApiError.ts"

type Answer =
  | ApiError.BadRequest
  | ApiError.Unauthorized
  | ApiError.Forbidden
  | ApiError.NotFound
  | ApiError.PayloadTooLarge
  | ApiError.ServiceUnavailable

const statusOf = (error: Answer): number =>
  error instanceof ApiError.BadRequest
    ? 400
    : error instanceof ApiError.Unauthorized
      ? 401
      : error instanceof ApiError.Forbidden
        ? 403
        : error instanceof ApiError.NotFound
          ? 404
          : error instanceof ApiError.PayloadTooLarge
            ? 413
            : 503

export const bodyOf = (error: Answer) => ({
  error: error.error,
  message: error.message,
  ...("details" in error && error.details !== undefined ? { details: error.details } : {})
})

export const respond = (error: Answer) =>
  Effect.succeed(HttpServerResponse.jsonUnsafe(bodyOf(error), { status: statusOf(error) }))
