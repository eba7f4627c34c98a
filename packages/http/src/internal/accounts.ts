/**
 * The accounts dialect's handlers (see `AccountsApi.ts`). Every lookup is scoped twice: to the caller's
 * workspaces, and to the account in the path, so an object of another account is a 404 exactly like a
 * missing one. Statuses are the dialect's (`toAccounts`).
 */
import {
  Access,
  AppVersion,
  Authenticator,
  type Build,
  BuildState,
  Fields,
  Id,
  LogCursor,
  Query,
  Secrets,
  SourceStore,
  Storage,
  Trigger
} from "@kiln/core"
import { DateTime, Effect, Layer, Option, Schema, type SchemaIssue } from "effect"
import { HttpApiBuilder, HttpApiMiddleware } from "effect/http-api"
import {
  AccountsApi,
  AccountsAuthorization,
  AccountsBadRequest,
  AccountsConflict,
  AccountsForbidden,
  AccountsNotFound,
  AccountsPrincipal,
  AccountsRequestErrors,
  AccountsUnauthorized,
  type BuildView,
  type TriggerView
} from "../AccountsApi.ts"
import { authenticate } from "./authorization.ts"
import { toAccounts } from "./dialectStatus.ts"
import { isA, storageAnswers } from "./errors.ts"
import { refusal } from "./gitSources.ts"
import { idOf, lookUp } from "./ids.ts"
import { connectionUuid, repositoryOf } from "./repositories.ts"
import * as RequestErrors from "./requestErrors.ts"

const ok = <A>(result: A) => ({ success: true as const, errors: [], messages: [], result })
const iso = (at: DateTime.Utc | null) => (at === null ? null : DateTime.formatIso(at))

const maxIds = 20

const decodeSource = Schema.decodeUnknownResult(AppVersion.NewSource)
const decodeTriggerId = Schema.decodeUnknownOption(Id.TriggerId)

/** A comma-separated id list of at most 20. */
const idList = (parameter: string, text: string) => {
  const ids = text
    .split(",")
    .map((id) => id.trim())
    .filter((id) => id !== "")
  return ids.length === 0 || ids.length > maxIds
    ? Effect.fail(AccountsBadRequest.of(`${parameter}: expected 1 to ${maxIds} comma-separated ids`))
    : Effect.succeed(ids)
}

/** Kiln's root directory as the dialect spells it: `/` the repository's root, "" none (the app's own). */
const rootDirectoryView = (path: string | null | undefined) =>
  path === null || path === undefined ? "" : `/${path}`

/** The dialect's spelling read back: "" is none, and a leading `/` names the repository's root. */
const rootDirectoryInput = (path: string | null) =>
  path === null || path === "" ? null : path.replace(/^\//, "")

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

/** `AccountsAuthorization`: the same authentication as the canonical API, failing in the envelope. */
export const authorizationLayer = Layer.effect(
  AccountsAuthorization,
  Effect.gen(function* () {
    const authenticator = yield* Authenticator.Authenticator
    return AccountsAuthorization.of({
      bearer: (httpEffect, { credential, endpoint }) =>
        Effect.flatMap(authenticate(authenticator, credential, AccountsUnauthorized.instance), (principal) =>
          Effect.provideService(
            RequestErrors.refusingNonUtf8(httpEffect, endpoint, AccountsBadRequest.of(RequestErrors.notUtf8)),
            AccountsPrincipal,
            principal
          )
        )
    })
  })
)

/** The first problem of a decoding failure, as a 400 in the envelope. */
const badRequestOf = (root: string, issue: SchemaIssue.Issue) => {
  const [first] = RequestErrors.issuesOf(root, issue)
  return AccountsBadRequest.of(first === undefined ? `${root}: invalid` : `${first.path}: ${first.message}`)
}

export const requestErrorsLayer = HttpApiMiddleware.layerSchemaErrorTransform(
  AccountsRequestErrors,
  RequestErrors.transform((error) => Effect.fail(badRequestOf(error.kind.toLowerCase(), error.cause.issue)))
)

const decodeTrigger = Schema.decodeUnknownResult(Trigger.NewTrigger)

/** A trigger as the API names its fields, checked whole (variable names, root directory, sizes). */
const checkedTrigger = (input: Trigger.NewTrigger) =>
  Effect.fromResult(decodeTrigger(input)).pipe(
    Effect.mapError((error) => badRequestOf("payload", error.issue))
  )

const writer = Effect.flatMap(Effect.service(AccountsPrincipal), (principal) =>
  Authenticator.hasRole(principal, "write")
    ? Effect.succeed(principal)
    : Effect.fail(AccountsForbidden.of("this needs a token with the write role"))
)

/** Storage's NotFound under the dialect's own words for the missing thing. */
const notFoundAs = <A, E, R>(message: string, effect: Effect.Effect<A, E, R>) =>
  Effect.catchIf(effect, isA(Storage.NotFound), () => Effect.fail(AccountsNotFound.of(message)))

/** Storage's NotFound and Conflict in the envelope; a storage failure is a defect (a 500). */
const { fromStorage, fromStorageWrite } = storageAnswers(AccountsNotFound.of, AccountsConflict.of)

/** The caller's view of one account: a workspace it may see, or 404. */
const accountOf = (storage: Storage.StorageShape, accountId: string) =>
  Effect.gen(function* () {
    const principal = yield* Effect.service(AccountsPrincipal)
    const workspace = yield* fromStorage(
      lookUp(
        "wsp",
        accountId,
        (id) => storage.getWorkspace(principal.access, id),
        AccountsNotFound.of("Account not found")
      )
    )
    return { principal, access: Access.workspaces([workspace.id]) }
  })

/** The script (an app) the path or body names, in the account. */
const scriptOf = (storage: Storage.StorageShape, access: Access.Access, text: string) =>
  fromStorage(
    lookUp("app", text, (id) => storage.getApp(access, id), AccountsNotFound.of("Script not found"))
  )

export const buildsLayer = HttpApiBuilder.group(AccountsApi, "accountsBuilds", (handlers) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage

    const triggerOf = (access: Access.Access, build: Build.Build) => {
      const id = decodeTriggerId(build.triggerMetadata?.triggerId)
      return Option.isSome(id)
        ? storage.getTrigger(access, id.value).pipe(
            Effect.option,
            Effect.map((o) => (o._tag === "Some" ? o.value : null))
          )
        : Effect.succeed(null)
    }
    const view = (access: Access.Access, build: Build.Build) =>
      Effect.map(Effect.orDie(triggerOf(access, build)), (trigger) => buildView(build, trigger))

    const buildOf = (access: Access.Access, text: string) =>
      Effect.gen(function* () {
        return yield* fromStorage(
          lookUp("bld", text, (id) => storage.getBuild(access, id), AccountsNotFound.of("Build not found"))
        )
      })

    /** The newest build whose `field` is `value`, in the account. */
    const latestWhere = (access: Access.Access, field: "appVersionId" | "entityId", value: string) =>
      Effect.gen(function* () {
        const query = yield* Query.fromParams(Fields.builds, access, {
          filter: JSON.stringify({ [field]: { eq: value } }),
          limit: "1"
        }).pipe(Effect.orDie)
        return (yield* Effect.orDie(storage.listBuilds(access, query))).rows[0]
      })

    /** Builds by id list: each id that has one maps to its newest build; ids with none are left out. */
    const newestBy = (
      access: Access.Access,
      prefix: "ver" | "app",
      field: "appVersionId" | "entityId",
      ids: ReadonlyArray<string>
    ) =>
      Effect.gen(function* () {
        const builds: Record<string, BuildView> = {}
        for (const text of ids) {
          const id = idOf(prefix, text)
          const build = id === undefined ? undefined : yield* latestWhere(access, field, id)
          if (build !== undefined) builds[text] = yield* view(access, build)
        }
        return ok({ builds })
      })

    return handlers
      .handle("byVersions", ({ params, query }) =>
        Effect.gen(function* () {
          const { access } = yield* accountOf(storage, params.account_id)
          return yield* newestBy(
            access,
            "ver",
            "appVersionId",
            yield* idList("version_ids", query.version_ids)
          )
        })
      )
      .handle("latest", ({ params, query }) =>
        Effect.gen(function* () {
          const { access } = yield* accountOf(storage, params.account_id)
          const ids = yield* idList("external_script_ids", query.external_script_ids)
          return yield* newestBy(access, "app", "entityId", ids)
        })
      )
      .handle("get", ({ params }) =>
        Effect.gen(function* () {
          const { access } = yield* accountOf(storage, params.account_id)
          return ok(yield* view(access, yield* buildOf(access, params.build_uuid)))
        })
      )
      .handle("cancel", ({ params }) =>
        Effect.gen(function* () {
          const { access, principal } = yield* accountOf(storage, params.account_id)
          yield* writer
          const build = yield* buildOf(access, params.build_uuid)
          const { build: after, accepted } = yield* fromStorage(
            notFoundAs(
              "Build not found",
              storage.requestCancel(access, build.id, `cancelled by ${principal.name}`)
            )
          )
          const { status, buildOutcome } = toAccounts(BuildState.stateOf(after))
          return {
            ...ok({
              build_uuid: Id.toUuid(after.id),
              status,
              build_outcome: buildOutcome,
              stopped_on: iso(after.completedAt)
            }),
            messages: !accepted
              ? [{ code: 409, message: `the build had already stopped (${buildOutcome}): nothing to cancel` }]
              : status === "stopped"
                ? []
                : [
                    {
                      code: 202,
                      message: `cancel requested: the build is ${status} until its runner has stopped it; its build_outcome follows (GET the build)`
                    }
                  ]
          }
        })
      )
      .handle("logs", ({ params, query }) =>
        Effect.gen(function* () {
          const { access } = yield* accountOf(storage, params.account_id)
          const build = yield* buildOf(access, params.build_uuid)
          const after = yield* Effect.fromResult(LogCursor.decode(query.cursor)).pipe(
            Effect.mapError((error) => AccountsBadRequest.of(`cursor: ${error.message}`))
          )
          const page = yield* Effect.orDie(storage.readLogs(access, build.id, after, 1000))
          const last = page.lines.at(-1)?.seq ?? after
          // The build was read first: stopped then, every line it will have was already stored.
          const complete = build.phase === "stopped" && last >= page.lastSeq
          return ok({
            ...(complete ? {} : { cursor: LogCursor.encode(last) }),
            lines: page.lines.map((line) => [DateTime.toEpochMillis(line.ts), line.text] as const),
            truncated: page.truncated
          })
        })
      )
      .handle("byScript", ({ params, query }) =>
        Effect.gen(function* () {
          const { access } = yield* accountOf(storage, params.account_id)
          const page = yield* positive("page", query.page, 1, Number.MAX_SAFE_INTEGER)
          const perPage = yield* positive("per_page", query.per_page, 25, 200)
          const app = yield* scriptOf(storage, access, params.external_script_id)
          if (page * perPage > maxPagedRows) {
            return yield* AccountsBadRequest.of(`page: at most ${maxPagedRows} builds can be paged through`)
          }
          const listed = yield* Query.fromParams(Fields.builds, access, {
            app_id: app.id
          }).pipe(Effect.orDie)
          const result = yield* Effect.orDie(storage.listBuilds(access, { ...listed, limit: page * perPage }))
          const rows = result.rows.slice((page - 1) * perPage)
          return {
            ...ok(yield* Effect.forEach(rows, (build) => view(access, build))),
            result_info: {
              page,
              per_page: perPage,
              count: rows.length,
              total_count: result.total,
              total_pages: Math.ceil(result.total / perPage),
              next_page: page * perPage < result.total
            }
          }
        })
      )
  })
)

/** Pages are read from the newest build on: the deepest page a request may ask for ends here. */
const maxPagedRows = 10_000

const positive = (parameter: string, text: string | undefined, fallback: number, max: number) => {
  if (text === undefined) return Effect.succeed(fallback)
  const value = /^\d{1,8}$/.test(text) ? Number(text) : 0
  return value >= 1 && value <= max
    ? Effect.succeed(value)
    : Effect.fail(AccountsBadRequest.of(`${parameter}: expected an integer from 1 to ${max}`))
}

export const triggersLayer = HttpApiBuilder.group(AccountsApi, "accountsTriggers", (handlers) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const sources = yield* SourceStore.SourceStore

    const triggerOf = (access: Access.Access, text: string) => {
      return fromStorage(
        lookUp("trg", text, (id) => storage.getTrigger(access, id), AccountsNotFound.of("Trigger not found"))
      )
    }

    type Input = Partial<{
      readonly trigger_name: string
      readonly repository: string | null
      readonly branch_includes: ReadonlyArray<string>
      readonly branch_excludes: ReadonlyArray<string>
      readonly path_includes: ReadonlyArray<string>
      readonly path_excludes: ReadonlyArray<string>
      readonly build_command: string | null
      readonly deploy_command: string | null
      readonly root_directory: string | null
      readonly build_caching_enabled: boolean
      readonly environment_variables: Readonly<
        Record<string, { readonly is_secret: boolean; readonly value?: string }>
      >
    }>
    /** The fields given, in Kiln's names; a field left out stays as it is. */
    const patchOf = (input: Input): Trigger.TriggerPatch => {
      const fields: Record<string, unknown> = {
        name: input.trigger_name,
        repository: input.repository,
        branchIncludes: input.branch_includes,
        branchExcludes: input.branch_excludes,
        pathIncludes: input.path_includes,
        pathExcludes: input.path_excludes,
        buildCommand: input.build_command === "" ? null : input.build_command,
        deployCommand: input.deploy_command === "" ? null : input.deploy_command,
        rootDirectory:
          input.root_directory === undefined ? undefined : rootDirectoryInput(input.root_directory),
        cachingEnabled: input.build_caching_enabled,
        environment:
          input.environment_variables === undefined
            ? undefined
            : Object.entries(input.environment_variables).map(([name, { is_secret, value }]) => ({
                name,
                secret: is_secret,
                ...(value === undefined ? {} : { value })
              }))
      }
      return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined))
    }
    /**
     * Seals the secret values of a patch's variables; a secret given without a value keeps the sealed one
     * it had before. Secret values need the server's secrets key.
     */
    const sealed = (
      patch: Trigger.TriggerPatch,
      before: ReadonlyArray<Trigger.Trigger["environment"][number]>
    ) =>
      Effect.gen(function* () {
        if (patch.environment === undefined) return patch
        const { key } = yield* Secrets.SecretsKey
        const environment: Array<Trigger.Trigger["environment"][number]> = []
        for (const variable of patch.environment) {
          if (!variable.secret || variable.value === undefined) {
            const kept = before.find((old) => old.name === variable.name && old.secret && variable.secret)
            environment.push(kept ?? variable)
            continue
          }
          if (key === undefined) {
            return yield* AccountsBadRequest.of(
              `environment_variables.${variable.name}: secret values need KILN_SECRETS_KEY set on the server`
            )
          }
          environment.push({ ...variable, value: Secrets.seal(key, variable.value) })
        }
        return { ...patch, environment }
      })

    /** A trigger's repository, refused when the source store would not fetch from it. */
    const checkedRepository = (repository: string | null) => {
      const refused =
        repository === null
          ? undefined
          : refusal(sources, { url: repository }, { url: "payload.repository", ref: "payload.branch" })
      return refused === undefined ? Effect.void : Effect.fail(AccountsBadRequest.of(refused))
    }

    return handlers
      .handle("create", ({ params, payload }) =>
        Effect.gen(function* () {
          const { access } = yield* accountOf(storage, params.account_id)
          yield* writer
          // The script first, so that one named by text that is no id fails where a missing one does.
          const app = yield* scriptOf(storage, access, payload.external_script_id)
          const patch = yield* sealed(patchOf(payload), [])
          const input = yield* checkedTrigger(Trigger.input(app.id, payload.trigger_name, patch))
          yield* checkedRepository(input.repository)
          const trigger = yield* fromStorage(
            notFoundAs("Script not found", storage.createTrigger(access, input))
          )
          return ok(triggerView(trigger))
        })
      )
      .handle("update", ({ params, payload }) =>
        Effect.gen(function* () {
          const { access } = yield* accountOf(storage, params.account_id)
          yield* writer
          const trigger = yield* triggerOf(access, params.trigger_uuid)
          const patch = yield* sealed(patchOf(payload), trigger.environment)
          // The patched trigger must still be a valid one.
          const {
            id: _id,
            workspaceId: _ws,
            createdAt: _c,
            updatedAt: _u,
            deletedAt: _d,
            ...patched
          } = Trigger.update(trigger, patch, trigger.updatedAt)
          yield* checkedTrigger(patched)
          // A repository stored before it was refused does not block editing the rest: its builds are 409s.
          if (patch.repository !== undefined) yield* checkedRepository(patch.repository)
          return ok(triggerView(yield* fromStorageWrite(storage.updateTrigger(access, trigger.id, patch))))
        })
      )
      .handle("delete", ({ params }) =>
        Effect.gen(function* () {
          const { access } = yield* accountOf(storage, params.account_id)
          yield* writer
          const trigger = yield* triggerOf(access, params.trigger_uuid)
          return ok(triggerView(yield* fromStorage(storage.deleteTrigger(access, trigger.id))))
        })
      )
      .handle("list", ({ params }) =>
        Effect.gen(function* () {
          const { access } = yield* accountOf(storage, params.account_id)
          const app = yield* scriptOf(storage, access, params.external_script_id)
          const query = yield* Query.fromParams(Fields.triggers, access, {
            app_id: app.id,
            filter: JSON.stringify({ deletedAt: { isNull: true } }),
            orderBy: JSON.stringify([{ createdAt: "asc" }])
          }).pipe(Effect.orDie)
          const result = yield* Effect.orDie(storage.listTriggers(access, query))
          return ok(result.rows.map(triggerView))
        })
      )
      .handle("build", ({ params, payload }) =>
        Effect.gen(function* () {
          const { access, principal } = yield* accountOf(storage, params.account_id)
          yield* writer
          const trigger = yield* triggerOf(access, params.trigger_uuid)
          if (trigger.deletedAt !== null) return yield* AccountsConflict.of("the trigger is deleted")
          if (trigger.repository === null) {
            return yield* AccountsConflict.of("the trigger names no repository to build from")
          }
          if ((payload.branch === undefined) === (payload.commit_hash === undefined)) {
            return yield* AccountsBadRequest.of("give exactly one of branch and commit_hash")
          }
          // A repository stored before the store refused it is the trigger's fault, not the request's.
          const refused = sources.checkGit(trigger.repository, payload.branch)
          if (refused?.field === "url")
            return yield* AccountsConflict.of(`the trigger's repository is refused: ${refused.issue}`)
          if (refused !== undefined) return yield* AccountsBadRequest.of(`payload.branch: ${refused.issue}`)
          const source =
            payload.commit_hash !== undefined
              ? { type: "git" as const, url: trigger.repository, commitSha: payload.commit_hash }
              : { type: "git" as const, url: trigger.repository, ref: payload.branch! }
          const valid = yield* Effect.fromResult(decodeSource(source)).pipe(
            Effect.mapError((error) => badRequestOf("payload", error.issue))
          )
          const version = yield* fromStorage(
            storage.createAppVersion(access, { appId: trigger.appId, source: valid })
          )
          const ready =
            version.status === "ready"
              ? version
              : yield* sources.resolveGit(trigger.repository, payload.branch!).pipe(
                  Effect.matchEffect({
                    onSuccess: (commit) =>
                      fromStorageWrite(
                        storage.resolveAppVersion(access, version.id, { status: "ready", ...commit })
                      ),
                    onFailure: (error) =>
                      error.reason === "Unavailable"
                        ? Effect.die(error)
                        : fromStorageWrite(
                            storage.resolveAppVersion(access, version.id, {
                              status: "failed",
                              error: error.message
                            })
                          ).pipe(
                            Effect.andThen(
                              Effect.fail(AccountsConflict.of(`branch ${payload.branch}: ${error.message}`))
                            )
                          )
                  })
                )
          const build = yield* fromStorageWrite(
            storage.createBuild(access, {
              appVersionId: ready.id,
              trigger: "manual",
              createdBy: principal.name,
              triggerMetadata: {
                ...Trigger.metadataFor(trigger, {
                  source: "manual",
                  repository: trigger.repository,
                  branch: payload.branch ?? null,
                  commitSha: ready.commitSha,
                  commitMessage: ready.source.type === "git" ? ready.source.message : null,
                  author: ready.source.type === "git" ? ready.source.author : null,
                  tokenId: principal.tokenId,
                  tokenName: principal.tokenId === null ? null : principal.name
                })
              }
            })
          )
          return ok(buildView(build, trigger))
        })
      )
  })
)
