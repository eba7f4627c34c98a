/**
 * Change hints: what storage publishes when a build is created or changes state, gains log lines, or
 * events are written.
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
  | {
      /** Events were written (and deliveries may be due): feed readers and webhook senders look again. */
      readonly _tag: "EventsWritten"
    }

/** The hint every storage publishes when a build is created or changes state. */
export const buildChanged = (build: Build): Change => ({
  _tag: "BuildChanged",
  buildId: build.id,
  workspaceId: build.workspaceId,
  phase: build.phase,
  cancelRequested: build.cancelRequestedAt !== null
})

/** The hints about one build, as a subscriber that follows builds or logs keeps them. */
export type BuildChange = Exclude<Change, { readonly _tag: "EventsWritten" }>
export const isBuildChange = (change: Change): change is BuildChange => change._tag !== "EventsWritten"
