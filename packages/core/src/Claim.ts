/**
 * What a claim asks for, and the pure choice of which queued builds it may take: oldest first, at most
 * `max`, without exceeding the per-workspace and per-app caps on builds that are claimed and not stopped.
 * Every storage runs this choice inside its own transaction (or as one SQL statement that encodes it).
 */
import type { AppId, BuildId, WorkspaceId } from "./Id.ts"

export interface Limits {
  /** At most this many active builds per workspace, across all processes. */
  readonly perWorkspace?: number | undefined
  /** At most this many active builds per app, across all processes. */
  readonly perApp?: number | undefined
}

export interface ClaimRequest {
  /** The claiming engine process; it must stay the same for every write under the claim. */
  readonly owner: string
  readonly leaseMs: number
  /** How many builds to claim at most (the engine's free concurrency). */
  readonly max: number
  readonly limits?: Limits | undefined
}

export interface Candidate {
  readonly id: BuildId
  readonly workspaceId: WorkspaceId
  readonly entityId: AppId
}

export interface ActiveCounts {
  readonly byWorkspace: ReadonlyMap<string, number>
  readonly byApp: ReadonlyMap<string, number>
}

export const hasCaps = (limits: Limits | undefined): boolean =>
  limits?.perWorkspace !== undefined || limits?.perApp !== undefined

/** Picks, from candidates in claim order, those the caps allow, counting the ones picked so far. */
export const select = <C extends Candidate>(
  candidates: Iterable<C>,
  active: ActiveCounts,
  max: number,
  limits: Limits | undefined
): ReadonlyArray<C> => {
  const picked: Array<C> = []
  if (max <= 0) return picked
  const byWorkspace = new Map(active.byWorkspace)
  const byApp = new Map(active.byApp)
  for (const candidate of candidates) {
    const workspaceCount = byWorkspace.get(candidate.workspaceId) ?? 0
    const appCount = byApp.get(candidate.entityId) ?? 0
    if (limits?.perWorkspace !== undefined && workspaceCount >= limits.perWorkspace) continue
    if (limits?.perApp !== undefined && appCount >= limits.perApp) continue
    byWorkspace.set(candidate.workspaceId, workspaceCount + 1)
    byApp.set(candidate.entityId, appCount + 1)
    picked.push(candidate)
    if (picked.length >= max) break
  }
  return picked
}
