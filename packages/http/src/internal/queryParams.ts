/** Query parameters every surface reads the same way, each refusal in the surface's own error. */
import { Result } from "effect"

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
