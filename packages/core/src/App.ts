/**
 * An app is something buildable (an app, a function, a worker: its `kind`) with the settings every build
 * of it uses.
 */
import { type DateTime, Schema } from "effect"
import { AppId, WorkspaceId } from "./Id.ts"
import { Name, NewName } from "./Workspace.ts"

/** DNS-label shaped, because it names the image: `{registry}/{handle}:{short_hash}`. */
export const Handle = Schema.String.check(
  Schema.isPattern(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, {
    expected: "a handle: 1-63 lowercase letters, digits or '-', not starting or ending with '-'"
  })
)

export const Kind = Schema.String.check(
  Schema.isPattern(/^[a-z][a-z0-9_-]{0,31}$/, { expected: "a kind such as app, function or worker" })
)

/** A path inside the source tree: relative, forward slashes, never leaving the root. */
export const RelativePath = Schema.String.check(
  Schema.isMaxLength(1024),
  Schema.makeFilter(
    (path: string) =>
      !path.startsWith("/") &&
      !path.includes("\\") &&
      !path.includes("\0") &&
      path.split("/").every((segment) => segment !== ".."),
    { expected: "a relative path inside the source tree" }
  )
)

export const Strategy = Schema.Literals(["dockerfile", "commands"])
export type Strategy = typeof Strategy.Type

export const Limits = Schema.Struct({
  memoryBytes: Schema.Int.check(Schema.isBetween({ minimum: 6 * 1024 * 1024, maximum: 2 ** 40 })),
  cpus: Schema.Finite.check(Schema.isBetween({ minimum: 0.01, maximum: 256 })),
  pids: Schema.Int.check(Schema.isBetween({ minimum: 16, maximum: 1_000_000 }))
})
export type Limits = typeof Limits.Type

const Command = Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(8192))

export const BuildSettings = Schema.Struct({
  strategy: Strategy,
  dockerfilePath: RelativePath,
  rootDirectory: RelativePath,
  buildCommand: Schema.NullOr(Command),
  deployCommand: Schema.NullOr(Command),
  /** The image the `commands` strategy runs its commands in. */
  builderImage: Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(512)),
  caching: Schema.Boolean,
  timeoutMs: Schema.Int.check(Schema.isBetween({ minimum: 1_000, maximum: 24 * 60 * 60 * 1000 })),
  limits: Limits
}).check(
  Schema.makeFilter((settings) =>
    settings.strategy === "commands" && settings.buildCommand === null
      ? { path: ["buildCommand"], issue: "the commands strategy needs a build command" }
      : undefined
  )
)
export type BuildSettings = typeof BuildSettings.Type

export const defaultBuildSettings: BuildSettings = {
  strategy: "dockerfile",
  dockerfilePath: "Dockerfile",
  rootDirectory: "",
  buildCommand: null,
  deployCommand: null,
  builderImage: "busybox:latest",
  caching: true,
  timeoutMs: 30 * 60 * 1000,
  limits: { memoryBytes: 2 * 1024 ** 3, cpus: 2, pids: 4096 }
}

export const App = Schema.Struct({
  id: AppId,
  workspaceId: WorkspaceId,
  handle: Handle,
  name: Name,
  kind: Kind,
  build: BuildSettings,
  createdAt: Schema.DateTimeUtc,
  updatedAt: Schema.DateTimeUtc
})
export type App = typeof App.Type

export const NewApp = Schema.Struct({
  workspaceId: WorkspaceId,
  handle: Handle,
  name: NewName,
  kind: Kind,
  build: BuildSettings
})
export type NewApp = typeof NewApp.Type

export const make = (id: AppId, input: NewApp, now: DateTime.Utc): App => ({
  id,
  ...input,
  createdAt: now,
  updatedAt: now
})
