/**
 * The accounts dialect's JSON: the envelope of every answer, and builds and triggers as the dialect
 * names their fields (UUIDs, `_on` times, `/`-rooted directories, a trigger's repository as a connection).
 */
import { type Build, BuildState, Id, Trigger } from "@kiln/core"
import { DateTime } from "effect"
import type { BuildView, TriggerView } from "../AccountsApi.ts"
import { toAccounts } from "./dialectStatus.ts"
import { connectionUuid, repositoryOf } from "./repositories.ts"

/** A success in the envelope. */
export const ok = <A>(result: A) => ({ success: true as const, errors: [], messages: [], result })
export const iso = (at: DateTime.Utc | null) => (at === null ? null : DateTime.formatIso(at))

/** Kiln's root directory as the dialect spells it: `/` the repository's root, "" none (the app's own). */
const rootDirectoryView = (path: string | null | undefined) =>
  path === null || path === undefined ? "" : `/${path}`

const variableView = (variable: Trigger.EnvironmentVariable, trigger: Trigger.Trigger) => ({
  is_secret: variable.secret,
  value: variable.secret ? null : (variable.value ?? null),
  created_on: variable.createdAt ?? DateTime.formatIso(trigger.createdAt)
})

const repoConnectionView = (
  accountId: Id.WorkspaceId,
  url: string | null,
  times: Pick<TriggerView, "created_on" | "modified_on" | "deleted_on">
): TriggerView["repo_connection"] => {
  const repository = url === null ? null : repositoryOf(url)
  return {
    repo_connection_uuid: repository === null ? "" : connectionUuid(Id.toUuid(accountId), repository),
    repo_id: repository?.id ?? "",
    repo_name: repository?.name ?? "",
    provider_type: repository?.providerType ?? "",
    provider_account_id: "",
    provider_account_name: repository?.owner ?? "",
    ...times
  }
}

export const triggerView = (trigger: Trigger.Trigger): TriggerView => {
  const times = {
    created_on: DateTime.formatIso(trigger.createdAt),
    modified_on: DateTime.formatIso(trigger.updatedAt),
    deleted_on: iso(trigger.deletedAt)
  }
  return {
    trigger_uuid: Id.toUuid(trigger.id),
    trigger_name: trigger.name,
    external_script_id: Id.toUuid(trigger.appId),
    repo_connection: repoConnectionView(trigger.workspaceId, trigger.repository, times),
    branch_includes: trigger.branchIncludes,
    branch_excludes: trigger.branchExcludes,
    path_includes: trigger.pathIncludes.length > 0 ? trigger.pathIncludes : Trigger.defaultPathIncludes,
    path_excludes: trigger.pathExcludes,
    build_command: trigger.buildCommand ?? "",
    deploy_command: trigger.deployCommand ?? "",
    root_directory: rootDirectoryView(trigger.rootDirectory),
    build_caching_enabled: trigger.cachingEnabled,
    environment_variables: Object.fromEntries(
      trigger.environment.map((variable) => [variable.name, variableView(variable, trigger)])
    ),
    ...times
  }
}

/** The trigger of a build that none made: every field empty, the times the build's. */
const noTriggerView = (build: Build.Build): TriggerView => {
  const times = {
    created_on: DateTime.formatIso(build.createdAt),
    modified_on: DateTime.formatIso(build.createdAt),
    deleted_on: null
  }
  return {
    trigger_uuid: "",
    trigger_name: "",
    external_script_id: Id.toUuid(build.entityId),
    repo_connection: repoConnectionView(build.workspaceId, null, times),
    branch_includes: [],
    branch_excludes: [],
    path_includes: [],
    path_excludes: [],
    build_command: "",
    deploy_command: "",
    root_directory: "",
    build_caching_enabled: false,
    environment_variables: {},
    ...times
  }
}

/** Where a build came from, when no trigger recorded it: `auto` builds come from pushes. */
const sourceOf = (build: Build.Build): BuildView["build_trigger_metadata"]["build_trigger_source"] =>
  build.trigger === "auto"
    ? "push"
    : build.trigger === "manual" && build.triggerMetadata !== null
      ? "manual"
      : "api"

export const buildView = (build: Build.Build, trigger: Trigger.Trigger | null): BuildView => {
  const metadata = (build.triggerMetadata ?? {}) as Partial<Trigger.BuildTriggerMetadata>
  const text = (value: string | null | undefined) => value ?? ""
  const repository =
    metadata.repository === undefined || metadata.repository === null
      ? null
      : repositoryOf(metadata.repository)
  const { status, buildOutcome } = toAccounts(BuildState.stateOf(build))
  return {
    build_uuid: Id.toUuid(build.id),
    status,
    build_outcome: buildOutcome,
    created_on: DateTime.formatIso(build.createdAt),
    initializing_on: iso(build.startedAt),
    running_on: iso(build.runningAt),
    stopped_on: iso(build.completedAt),
    modified_on: DateTime.formatIso(build.updatedAt),
    build_trigger_metadata: {
      build_trigger_source: metadata.source ?? sourceOf(build),
      branch: text(metadata.branch),
      commit_hash: text(metadata.commitSha ?? build.commitSha),
      commit_message: text(metadata.commitMessage),
      author: text(build.triggerMetadata === null ? build.createdBy : metadata.author),
      repo_name: repository?.name ?? "",
      build_command: text(metadata.buildCommand),
      deploy_command: text(metadata.deployCommand),
      root_directory: rootDirectoryView(metadata.rootDirectory),
      environment_variables: Object.fromEntries(
        (metadata.environmentVariables ?? []).map((name) => {
          const variable = trigger?.environment.find((v) => v.name === name)
          return [
            name,
            variable === undefined
              ? { is_secret: true, value: null, created_on: DateTime.formatIso(build.createdAt) }
              : variableView(variable, trigger!)
          ]
        })
      ),
      build_token_name: text(metadata.tokenName),
      build_token_uuid:
        metadata.tokenId === undefined || metadata.tokenId === null ? "" : Id.toUuid(metadata.tokenId),
      provider_type: repository?.providerType ?? "",
      provider_account_name: repository?.owner ?? ""
    },
    pull_request: null,
    trigger: trigger === null ? noTriggerView(build) : triggerView(trigger)
  }
}
