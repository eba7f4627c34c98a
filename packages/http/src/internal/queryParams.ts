/** Query parameters every surface reads the same way, each refusal in the surface's own error. */
import { Effect, Result } from "effect"
import * as ApiError from "../ApiError.ts"

/**
 * A whole number from 1 to `max` written as digits (`fallback` when absent), or the message that says what
 * `parameter` expects.
 */
export const positiveInt = (
  parameter: string,
  text: string | undefined,
  fallback: number,
  max: number
): Result.Result<number, string> => {
  if (text === undefined) return Result.succeed(fallback)
  const value = /^\d{1,9}$/.test(text) ? Number(text) : 0
  return value >= 1 && value <= max
    ? Result.succeed(value)
    : Result.fail(`${parameter}: expected an integer from 1 to ${max}`)
}

/** `positiveInt` in the canonical API: a refusal is a 400 `invalid_parameter`. */
export const positiveIntParam = (
  parameter: string,
  text: string | undefined,
  fallback: number,
  max: number
) =>
  Effect.mapError(Effect.fromResult(positiveInt(parameter, text, fallback, max)), (message) =>
    ApiError.badRequest("invalid_parameter", message)
  )
