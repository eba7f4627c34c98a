/**
 * A trigger says when pushes build an app automatically: branch includes and excludes, path excludes
 * (checked first) and includes (default `["*"]`), and the commands and settings its builds use.
 * Secret environment variable values are stored sealed and never returned.
 */
import { DateTime, Schema } from "effect"
import { type BuildSettings, RelativePath } from "./App.ts"
import { AppId, type TokenId, TriggerId, WorkspaceId } from "./Id.ts"
import * as Glob from "./internal/glob.ts"
import { Name, NewName } from "./Workspace.ts"

const Pattern = Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(1024))
const Patterns = Schema.Array(Pattern).check(Schema.isMaxLength(100))

export const EnvironmentVariable = Schema.Struct({
  name: Schema.String.check(
    Schema.isPattern(/^[A-Za-z_][A-Za-z0-9_]{0,254}$/, { expected: "a variable name" })
  ),
  secret: Schema.Boolean,
  /**
   * A plain variable's value; a secret's, sealed (`Secrets.seal`) before it reaches storage, so it is never
   * stored in the clear and no view shows it. Without one, the engine's `environment` option supplies it.
   */
  value: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(65_536))),
  /**
   * When the variable was first set on its trigger (ISO 8601), stamped by `make` and kept by `update` while
   * the name stays; absent on variables stored before Kiln recorded it.
   */
  createdAt: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(64)))
})
export type EnvironmentVariable = typeof EnvironmentVariable.Type

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

/** What of a push a trigger looks at. */
export interface Push {
  readonly repository: string
  /** Null for a push that names no branch (a tag). */
  readonly branch: string | null
  /** Empty when the sender did not say which paths changed. */
  readonly changedPaths: ReadonlyArray<string>
}

/** The rules of a trigger, as `evaluate` reads them. */
export type Rules = Pick<
  Trigger,
  "repository" | "branchIncludes" | "branchExcludes" | "pathIncludes" | "pathExcludes" | "deletedAt"
>

/**
 * What a push means for one trigger: a build; a build recorded as `skipped` with the reason (the branch
 * is the trigger's but the paths are not); or nothing at all (not the trigger's repository or branch).
 */
export type Decision =
  | { readonly _tag: "Build" }
  | { readonly _tag: "Skip"; readonly reason: string }
  | { readonly _tag: "Ignore"; readonly reason: string }

/** The path includes when a trigger names none: every path. */
export const defaultPathIncludes: ReadonlyArray<string> = ["*"]

/**
 * Evaluates a push against a trigger's rules (patterns as `Glob` reads them). Excludes always win:
 *
 * 1. A deleted trigger, another repository (when the trigger names one), or a branch that matches a
 *    branch exclude, or none of the branch includes (when there are any), is ignored.
 * 2. Changed paths that match a path exclude are set aside first. When that leaves none, the build is
 *    skipped; when none of the rest matches a path include (default `["*"]`), it is skipped too.
 * 3. A push that lists no changed paths builds: there is nothing to exclude it by.
 */
export const evaluate = (rules: Rules, push: Push): Decision => {
  if (rules.deletedAt !== null) return { _tag: "Ignore", reason: "the trigger is deleted" }
  if (rules.repository !== null && rules.repository !== push.repository) {
    return { _tag: "Ignore", reason: `the push is to ${push.repository}, not ${rules.repository}` }
  }
  const branch = push.branch
  const excludedBy = branch === null ? undefined : Glob.firstMatch(rules.branchExcludes, branch)
  if (excludedBy !== undefined) {
    return { _tag: "Ignore", reason: `branch ${branch} is excluded by "${excludedBy}"` }
  }
  if (
    rules.branchIncludes.length > 0 &&
    (branch === null || Glob.firstMatch(rules.branchIncludes, branch) === undefined)
  ) {
    return {
      _tag: "Ignore",
      reason: branch === null ? "the push names no branch" : `branch ${branch} is not included`
    }
  }
  if (push.changedPaths.length === 0) return { _tag: "Build" }
  const candidates = push.changedPaths.filter(
    (path) => Glob.firstMatch(rules.pathExcludes, path) === undefined
  )
  if (candidates.length === 0) {
    const count = push.changedPaths.length
    return {
      _tag: "Skip",
      reason: `${count === 1 ? "the changed path is" : `all ${count} changed paths are`} excluded by the trigger's path excludes`
    }
  }
  const includes = rules.pathIncludes.length > 0 ? rules.pathIncludes : defaultPathIncludes
  return candidates.some((path) => Glob.firstMatch(includes, path) !== undefined)
    ? { _tag: "Build" }
    : { _tag: "Skip", reason: "no changed path matches the trigger's path includes" }
}

/** What a caller gives to create a trigger; the workspace is its app's. */
export const NewTrigger = Trigger.mapFields(
  ({
    id: _id,
    workspaceId: _workspace,
    createdAt: _created,
    updatedAt: _updated,
    deletedAt: _deleted,
    ...fields
  }) => ({ ...fields, name: NewName })
)
export type NewTrigger = typeof NewTrigger.Type

/**
 * A new trigger of `appId` with the defaults every caller would otherwise spell out: any repository, every
 * branch, every path, the app's own commands and root directory, no caching, no variables.
 */
export const input = (appId: AppId, name: string, fields: TriggerPatch = {}): NewTrigger => ({
  appId,
  name,
  repository: null,
  branchIncludes: [],
  branchExcludes: [],
  pathIncludes: [],
  pathExcludes: [],
  buildCommand: null,
  deployCommand: null,
  rootDirectory: null,
  cachingEnabled: false,
  environment: [],
  ...fields
})

/** The fields an update may change; the app a trigger builds never changes. */
export type TriggerPatch = Partial<Omit<NewTrigger, "appId">>

export const make = (
  id: TriggerId,
  workspaceId: WorkspaceId,
  input: NewTrigger,
  now: DateTime.Utc
): Trigger => ({
  // The input first: whatever else it carries, the ids and times are these.
  ...input,
  environment: stamped(input.environment, [], now),
  id,
  workspaceId,
  createdAt: now,
  updatedAt: now,
  deletedAt: null
})

export const update = (trigger: Trigger, patch: TriggerPatch, now: DateTime.Utc): Trigger => ({
  ...trigger,
  ...Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined)),
  ...(patch.environment === undefined
    ? {}
    : { environment: stamped(patch.environment, trigger.environment, now) }),
  updatedAt: now
})

/** Each variable with the time it was first set: its own under the same name before, else now. */
const stamped = (
  variables: ReadonlyArray<EnvironmentVariable>,
  before: ReadonlyArray<EnvironmentVariable>,
  now: DateTime.Utc
): ReadonlyArray<EnvironmentVariable> =>
  variables.map((variable) => ({
    ...variable,
    createdAt: before.find((old) => old.name === variable.name)?.createdAt ?? DateTime.formatIso(now)
  }))

/** A deleted trigger is kept, so the builds it made still show it, and never matches a push again. */
export const remove = (trigger: Trigger, now: DateTime.Utc): Trigger => ({
  ...trigger,
  updatedAt: now,
  deletedAt: now
})

/**
 * What a build made by a trigger records about it and about the push (`Build.triggerMetadata`): enough to
 * show the build's origin after the trigger changes or is deleted, and the settings it overrides.
 */
export interface BuildTriggerMetadata {
  readonly triggerId: TriggerId | null
  readonly triggerName: string | null
  readonly source: "push" | "pull_request" | "manual" | "api"
  readonly repository: string | null
  readonly branch: string | null
  readonly commitSha: string | null
  readonly commitMessage: string | null
  readonly author: string | null
  readonly buildCommand: string | null
  readonly deployCommand: string | null
  readonly rootDirectory: string | null
  readonly cachingEnabled: boolean | null
  /** The names only: values never travel with a build's visible fields. */
  readonly environmentVariables: ReadonlyArray<string>
  /** The API token that asked for the build (a manual build); null for a push. */
  readonly tokenId: TokenId | null
  readonly tokenName: string | null
}

export const metadataFor = (
  trigger: Trigger,
  origin: Pick<
    BuildTriggerMetadata,
    "source" | "repository" | "branch" | "commitSha" | "commitMessage" | "author" | "tokenId" | "tokenName"
  >
): BuildTriggerMetadata => ({
  triggerId: trigger.id,
  triggerName: trigger.name,
  ...origin,
  buildCommand: trigger.buildCommand,
  deployCommand: trigger.deployCommand,
  rootDirectory: trigger.rootDirectory,
  cachingEnabled: trigger.cachingEnabled,
  environmentVariables: trigger.environment.map((variable) => variable.name)
})

/**
 * The build settings a build runs with: its app's, with what its trigger set in their place. A build
 * without trigger metadata (or with a field the trigger left unset) keeps the app's.
 */
export const settingsFor = (
  settings: BuildSettings,
  metadata: Readonly<Record<string, unknown>> | null
): BuildSettings => {
  if (metadata === null) return settings
  const text = (key: string) => (typeof metadata[key] === "string" ? (metadata[key] as string) : undefined)
  const buildCommand = text("buildCommand")
  return {
    ...settings,
    // A trigger's build command runs its builds with the commands strategy.
    ...(buildCommand === undefined ? {} : { strategy: "commands" as const, buildCommand }),
    deployCommand: text("deployCommand") ?? settings.deployCommand,
    rootDirectory: text("rootDirectory") ?? settings.rootDirectory,
    caching: typeof metadata.cachingEnabled === "boolean" ? metadata.cachingEnabled : settings.caching
  }
}
