/**
 * A build's `(phase, outcome)` in the words of each dialect (the canonical status is core's,
 * `BuildState.toStatus`): the deployments dialect says `pending | building | success | failed |
 * cancelled`; the accounts dialect keeps the phase as `status` and reports the outcome as `build_outcome`.
 */
import { BuildState } from "@kiln/core"
import { Schema } from "effect"

/** The deployments dialect (`/api/v1/deployments`) status. */
export const DeploymentStatus = Schema.Literals(["pending", "building", "success", "failed", "cancelled"])
export type DeploymentStatus = typeof DeploymentStatus.Type

/** The accounts dialect keeps the phase as `status` and reports the outcome as `build_outcome`. */
export const AccountsStatus = BuildState.Phase
export type AccountsStatus = BuildState.Phase
export const AccountsOutcome = Schema.Literals(["success", "fail", "cancelled", "terminated", "skipped"])
export type AccountsOutcome = typeof AccountsOutcome.Type

// The deployments vocabulary has no `skipped`: a skipped build was never built and never will be, which
// its clients already read as `cancelled`.
const deploymentOutcome: Record<BuildState.Outcome, DeploymentStatus> = {
  success: "success",
  failure: "failed",
  timed_out: "failed",
  lost: "failed",
  cancelled: "cancelled",
  skipped: "cancelled"
}

export const toDeploymentStatus = (state: BuildState.State): DeploymentStatus => {
  switch (state.phase) {
    case "queued":
      return "pending"
    case "initializing":
    case "running":
      return "building"
    case "stopped":
      return deploymentOutcome[state.outcome]
  }
}

// `terminated` is what the accounts dialect calls a build the platform ended: a timeout or a lost owner.
const accountsOutcome: Record<BuildState.Outcome, AccountsOutcome> = {
  success: "success",
  failure: "fail",
  timed_out: "terminated",
  lost: "terminated",
  cancelled: "cancelled",
  skipped: "skipped"
}

export const toAccounts = (
  state: BuildState.State
): { readonly status: AccountsStatus; readonly buildOutcome: AccountsOutcome | null } => ({
  status: state.phase,
  buildOutcome: state.outcome === null ? null : accountsOutcome[state.outcome]
})
