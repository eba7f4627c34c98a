/**
 * A trigger says when pushes build an app automatically: branch includes and excludes, path excludes
 * (checked first) and includes (default `["*"]`), and the commands and settings its builds use.
 * Environment variable values are not part of the entity: secret ones are never returned.
 */
import { Schema } from "effect"
import { RelativePath } from "./App.ts"
import { AppId, TriggerId, WorkspaceId } from "./Id.ts"
import { Name } from "./Workspace.ts"

const Pattern = Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(1024))
const Patterns = Schema.Array(Pattern).check(Schema.isMaxLength(100))

export const EnvironmentVariable = Schema.Struct({
  name: Schema.String.check(
    Schema.isPattern(/^[A-Za-z_][A-Za-z0-9_]{0,254}$/, { expected: "a variable name" })
  ),
  secret: Schema.Boolean
})

export const Trigger = Schema.Struct({
  id: TriggerId,
  workspaceId: WorkspaceId,
  appId: AppId,
  name: Name,
  repository: Schema.NullOr(Schema.String.check(Schema.isMaxLength(2048))),
  branchIncludes: Patterns,
  branchExcludes: Patterns,
  pathIncludes: Patterns,
  pathExcludes: Patterns,
  buildCommand: Schema.NullOr(Schema.String.check(Schema.isMaxLength(8192))),
  deployCommand: Schema.NullOr(Schema.String.check(Schema.isMaxLength(8192))),
  rootDirectory: Schema.NullOr(RelativePath),
  cachingEnabled: Schema.Boolean,
  environment: Schema.Array(EnvironmentVariable).check(Schema.isMaxLength(200)),
  createdAt: Schema.DateTimeUtc,
  updatedAt: Schema.DateTimeUtc,
  deletedAt: Schema.NullOr(Schema.DateTimeUtc)
})
export type Trigger = typeof Trigger.Type
