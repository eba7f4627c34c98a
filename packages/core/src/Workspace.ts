/**
 * A workspace is the tenant: every other row belongs to exactly one, and access is granted per workspace.
 */
import { type DateTime, Schema } from "effect"
import { WorkspaceId } from "./Id.ts"

/** A stored name, as answers carry it: names stored before `NewName` existed must still read. */
export const Name = Schema.Trimmed.check(Schema.isNonEmpty(), Schema.isMaxLength(200))

/** A name as a caller gives it. Names reach logs, terminals and pages: no control characters. */
export const NewName = Name.check(
  Schema.isPattern(/^\P{Cc}*$/u, { expected: "a name without control characters (NUL, line breaks, …)" })
)

export const Workspace = Schema.Struct({
  id: WorkspaceId,
  name: Name,
  createdAt: Schema.DateTimeUtc,
  updatedAt: Schema.DateTimeUtc
})
export type Workspace = typeof Workspace.Type

export const NewWorkspace = Schema.Struct({ name: NewName })
export type NewWorkspace = typeof NewWorkspace.Type

export const make = (id: WorkspaceId, input: NewWorkspace, now: DateTime.Utc): Workspace => ({
  id,
  name: input.name,
  createdAt: now,
  updatedAt: now
})
