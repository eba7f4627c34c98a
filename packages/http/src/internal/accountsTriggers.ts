/**
 * The accounts dialect's triggers: create, update, delete and list a script's, and build from one. Secret
 * variable values are sealed with the server's secrets key; a repository the source store would not fetch
 * from is refused.
 */
import { type Access, AppVersion, Fields, Query, Secrets, SourceStore, Storage, Trigger } from "@kiln/core"
import { Effect, Schema } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { AccountsApi, AccountsBadRequest, AccountsConflict, AccountsNotFound } from "../AccountsApi.ts"
import {
  accountOf,
  badRequestOf,
  fromStorage,
  fromStorageWrite,
  notFoundAs,
  scriptOf,
  writer
} from "./accountsRequests.ts"
import { buildView, ok, triggerView } from "./accountsViews.ts"
import { refusal } from "./gitSources.ts"
import { lookUp } from "./ids.ts"

const decodeSource = Schema.decodeUnknownResult(AppVersion.NewSource)

/** The dialect's spelling read back: "" is none, and a leading `/` names the repository's root. */
const rootDirectoryInput = (path: string | null) =>
  path === null || path === "" ? null : path.replace(/^\//, "")

const decodeTrigger = Schema.decodeUnknownResult(Trigger.NewTrigger)

/** A trigger as the API names its fields, checked whole (variable names, root directory, sizes). */
const checkedTrigger = (input: Trigger.NewTrigger) =>
  Effect.fromResult(decodeTrigger(input)).pipe(
    Effect.mapError((error) => badRequestOf("payload", error.issue))
  )

export const layer = HttpApiBuilder.group(AccountsApi, "accountsTriggers", (handlers) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const sources = yield* SourceStore.SourceStore

    const triggerOf = (access: Access.Access, text: string) =>
      fromStorage(
        lookUp("trg", text, (id) => storage.getTrigger(access, id), AccountsNotFound.of("Trigger not found"))
      )

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
