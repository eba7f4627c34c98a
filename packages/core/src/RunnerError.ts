/**
 * Why a run failed, and whether trying again later can help.
 */
import { Schema } from "effect"

export const RunnerErrorReason = Schema.Literals([
  /** The build itself failed: a Dockerfile error, a command's non-zero exit. The message says why. */
  "BuildFailed",
  /** The source could not be read (a missing archive, a failed fetch). */
  "SourceFailed",
  /** The container engine could not be reached or refused; retrying later can help. */
  "Unavailable",
  /** Anything else the runner did not expect. */
  "Internal"
])
export type RunnerErrorReason = typeof RunnerErrorReason.Type

export class RunnerError extends Schema.TaggedError<RunnerError>()("RunnerError", {
  reason: RunnerErrorReason,
  /** Shown to users as the build's error: Docker's message, or "exit code 3". */
  message: Schema.String,
  exitCode: Schema.optional(Schema.Int),
  cause: Schema.optional(Schema.Defect())
}) {
  get retryable(): boolean {
    return this.reason === "Unavailable"
  }
}
