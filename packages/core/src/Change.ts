/**
 * Change hints: what storage publishes when a build is created or changes state, or gains log lines.
 * They only wake listeners up (engines, log followers); storage stays the truth, so a missed hint loses
 * nothing.
 */
import type { Build } from "./Build.ts"
import type { Phase } from "./BuildState.ts"
import type { BuildId, WorkspaceId } from "./Id.ts"

export type Change =
  | {
      readonly _tag: "BuildChanged"
      readonly buildId: BuildId
      readonly workspaceId: WorkspaceId
      readonly phase: Phase
      readonly cancelRequested: boolean
    }
  | {
      readonly _tag: "LogsAppended"
      readonly buildId: BuildId
      readonly workspaceId: WorkspaceId
      readonly lastSeq: number
    }

/** The hint every storage publishes when a build is created or changes state. */
export const buildChanged = (build: Build): Change => ({
  _tag: "BuildChanged",
  buildId: build.id,
  workspaceId: build.workspaceId,
  phase: build.phase,
  cancelRequested: build.cancelRequestedAt !== null
})
