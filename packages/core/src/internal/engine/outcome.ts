/**
 * How a run ended, and what the engine writes for each ending: the status of the steps still running, the
 * last log line and the final state.
 */
import type { DateTime } from "effect"
import type { BuildStep } from "../../Build.ts"
import type { BuildEvent, Fence } from "../../BuildState.ts"
import * as BuildState from "../../BuildState.ts"
import type { RunnerError } from "../../RunnerError.ts"

export interface Artifact {
  readonly imageTag: string
  readonly imageDigest: string | null
}

/** How a run ended, as decided by whichever came first. */
export type Outcome =
  | { readonly _tag: "Completed"; readonly artifact: Artifact | null }
  | { readonly _tag: "Failed"; readonly error: RunnerError | string }
  | { readonly _tag: "Cancelled" }
  | { readonly _tag: "TimedOut" }
  | { readonly _tag: "LeaseLost" }

/** The endings this process may still write: a lost lease leaves the build to whoever took it. */
export type Verdict = Exclude<Outcome, { readonly _tag: "LeaseLost" }>

/** The status a step still running when the run ended gets. */
export const closingStatus: Record<Verdict["_tag"], BuildStep["status"]> = {
  Completed: "succeeded",
  Failed: "failed",
  Cancelled: "cancelled",
  TimedOut: "cancelled"
}

export interface Closing {
  /** The build's timeout, which a timed-out build's error names. */
  readonly timeoutMs: number
  /** Why the build was cancelled, as the cancel request said. */
  readonly cancelReason: string | null
}

/** The last log line of a run that ended this way, and the state change that ends the build. */
export const conclusion = (
  verdict: Verdict,
  fence: Fence,
  at: DateTime.Utc,
  closing: Closing
): { readonly line: string; readonly event: BuildEvent } => {
  switch (verdict._tag) {
    case "Completed":
      return {
        line: `[kiln] completed${verdict.artifact ? `: ${verdict.artifact.imageTag}` : ""}`,
        event: {
          _tag: "Succeeded",
          at,
          ...fence,
          imageTag: verdict.artifact?.imageTag ?? null,
          imageDigest: verdict.artifact?.imageDigest ?? null
        }
      }
    case "Failed": {
      const error = typeof verdict.error === "string" ? verdict.error : verdict.error.message
      return { line: `[kiln] failed: ${error}`, event: { _tag: "Failed", at, ...fence, error } }
    }
    case "TimedOut": {
      const error = `timed out after ${formatDuration(closing.timeoutMs)}`
      return { line: `[kiln] ${error}`, event: { _tag: "TimedOut", at, ...fence, error } }
    }
    case "Cancelled":
      return {
        line: BuildState.cancelledText(closing.cancelReason),
        event: { _tag: "Stopped", at, ...fence }
      }
  }
}

const formatDuration = (ms: number) =>
  ms % 60_000 === 0 ? `${ms / 60_000} min` : ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`
