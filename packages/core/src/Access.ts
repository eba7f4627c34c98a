/**
 * What a caller may see: every workspace (the host itself, an all-workspace admin token) or a set of
 * workspaces. Every storage read and write that a caller names an object in carries one, so an object of
 * another workspace is indistinguishable from a missing one.
 */
import type { WorkspaceId } from "./Id.ts"

export type Access =
  | { readonly _tag: "All" }
  | { readonly _tag: "Workspaces"; readonly ids: ReadonlySet<WorkspaceId> }

export const all: Access = { _tag: "All" }

export const workspaces = (ids: Iterable<WorkspaceId>): Access => ({ _tag: "Workspaces", ids: new Set(ids) })

export const allows = (access: Access, workspaceId: WorkspaceId): boolean =>
  access._tag === "All" || access.ids.has(workspaceId)
