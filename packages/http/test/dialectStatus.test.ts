/**
 * The dialects' words for a build's `(phase, outcome)`: every pair the state machine allows (core's
 * BuildState tests show each is reachable) maps to a value of the dialect's schema, as documented.
 */
import { BuildState } from "@kiln/core"
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import {
  AccountsOutcome,
  AccountsStatus,
  DeploymentStatus,
  toAccounts,
  toDeploymentStatus
} from "../src/internal/dialectStatus.ts"

const pairs: ReadonlyArray<BuildState.State> = [
  { phase: "queued", outcome: null },
  { phase: "initializing", outcome: null },
  { phase: "running", outcome: null },
  ...BuildState.Outcome.literals.map((outcome) => ({ phase: "stopped" as const, outcome }))
]

describe("http › dialect statuses", () => {
  it("maps every pair as documented, to a value of the dialect's schema", () => {
    const table = pairs.map((state) => [
      `${state.phase}/${state.outcome}`,
      toDeploymentStatus(state),
      toAccounts(state).status,
      toAccounts(state).buildOutcome
    ])
    expect(table).toEqual([
      ["queued/null", "pending", "queued", null],
      ["initializing/null", "building", "initializing", null],
      ["running/null", "building", "running", null],
      ["stopped/success", "success", "stopped", "success"],
      ["stopped/failure", "failed", "stopped", "fail"],
      ["stopped/cancelled", "cancelled", "stopped", "cancelled"],
      ["stopped/timed_out", "failed", "stopped", "terminated"],
      ["stopped/lost", "failed", "stopped", "terminated"],
      ["stopped/skipped", "cancelled", "stopped", "skipped"]
    ])
    for (const state of pairs) {
      expect(Schema.is(DeploymentStatus)(toDeploymentStatus(state))).toBe(true)
      const { status, buildOutcome } = toAccounts(state)
      expect(Schema.is(AccountsStatus)(status)).toBe(true)
      expect(buildOutcome === null ? state.outcome === null : Schema.is(AccountsOutcome)(buildOutcome)).toBe(
        true
      )
    }
  })
})
