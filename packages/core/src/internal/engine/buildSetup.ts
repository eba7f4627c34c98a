/**
 * What a claimed build runs with: its app with its trigger's settings in place, its version, the variables
 * its commands get (its trigger's, then the host's), and the redactor that keeps their secret values out of
 * its log.
 */
import { Cache, Duration, Effect, Exit, Option, Schema } from "effect"
import * as Access from "../../Access.ts"
import type { App } from "../../App.ts"
import type { AppVersion } from "../../AppVersion.ts"
import type { Build } from "../../Build.ts"
import type { EngineOptions } from "../../Engine.ts"
import { type AppId, type AppVersionId, TriggerId } from "../../Id.ts"
import * as Redactor from "../../Redactor.ts"
import type { EnvironmentVariable } from "../../Runner.ts"
import * as Secrets from "../../Secrets.ts"
import type { NotFound, StorageError, StorageShape } from "../../Storage.ts"
import * as Trigger from "../../Trigger.ts"

export interface BuildSetup {
  readonly app: App
  readonly version: AppVersion
  readonly variables: ReadonlyArray<EnvironmentVariable>
  readonly redactor: Redactor.Redactor
  /** Why the build must fail before anything runs, if it must. */
  readonly problem: string | undefined
}

export interface BuildSetupInput {
  readonly storage: Pick<StorageShape, "getApp" | "getAppVersion" | "getTrigger">
  readonly environment: NonNullable<EngineOptions["environment"]>
}

export type SetUp = (build: Build) => Effect.Effect<BuildSetup, NotFound | StorageError>

/** Answers each build's setup; apps and versions are read once for all builds. */
export const makeBuildSetup = (input: BuildSetupInput): Effect.Effect<SetUp> =>
  Effect.gen(function* () {
    const { storage } = input
    // Storage never changes an app, nor a version once it is ready to build: each is read once. A failed
    // read is not kept, so the next build asks again.
    const kept = (exit: Exit.Exit<unknown, unknown>) =>
      Exit.isSuccess(exit) ? Duration.infinity : Duration.zero
    const apps = yield* Cache.makeWith((id: AppId) => storage.getApp(Access.all, id), {
      capacity: 1000,
      timeToLive: kept
    })
    const versions = yield* Cache.makeWith((id: AppVersionId) => storage.getAppVersion(Access.all, id), {
      capacity: 1000,
      timeToLive: kept
    })
    return (build) =>
      Effect.gen(function* () {
        // One after the other: both are almost always cached, and a fiber each would cost more.
        const stored = yield* Cache.get(apps, build.entityId)
        const version = yield* Cache.get(versions, build.appVersionId)
        // A build made by a trigger runs with the trigger's commands, root directory and caching.
        const app = { ...stored, build: Trigger.settingsFor(stored.build, build.triggerMetadata) }
        const fromTrigger = yield* triggerVariables(storage, build)
        const own = yield* input.environment(build, app)
        // The host's variables win over a trigger's of the same name.
        const variables = [
          ...fromTrigger.variables.filter((v) => !own.some((o) => o.name === v.name)),
          ...own
        ]
        const redactor = Redactor.make(variables.filter((v) => v.secret).map((v) => v.value))
        return { app, version, variables, redactor, problem: fromTrigger.problem }
      })
  })

interface TriggerVariables {
  readonly variables: ReadonlyArray<EnvironmentVariable>
  readonly problem: string | undefined
}

const none: TriggerVariables = { variables: [], problem: undefined }

const triggerIdOf = Schema.decodeUnknownOption(Schema.Struct({ triggerId: TriggerId }))

/**
 * The variables of the trigger that made a build, secret values opened with the secrets key; a trigger
 * deleted since still counts, as the build was made with it.
 */
const triggerVariables = (
  storage: Pick<StorageShape, "getTrigger">,
  build: Build
): Effect.Effect<TriggerVariables> =>
  Effect.gen(function* () {
    const metadata = triggerIdOf(build.triggerMetadata)
    if (Option.isNone(metadata)) return none
    const trigger = yield* storage.getTrigger(Access.all, metadata.value.triggerId).pipe(
      Effect.map(Option.some),
      Effect.catchTag("StorageNotFound", () => Effect.succeed(Option.none())),
      Effect.orDie
    )
    if (Option.isNone(trigger)) return none
    const { key } = yield* Secrets.SecretsKey
    const variables: Array<EnvironmentVariable> = []
    for (const variable of trigger.value.environment) {
      if (variable.value === undefined) continue
      const value = variable.secret
        ? key === undefined
          ? undefined
          : Secrets.open(key, variable.value)
        : variable.value
      if (value === undefined) {
        return {
          variables: [],
          problem: `the secret ${variable.name} could not be opened: KILN_SECRETS_KEY must be the key it was stored with`
        }
      }
      variables.push({ name: variable.name, value, secret: variable.secret })
    }
    return { variables, problem: undefined }
  })
