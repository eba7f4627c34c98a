/**
 * The deployments dialect (`/api/v1/deployments`, seed 001). A deployment is an app; a git deployment
 * also has a trigger named `deployment` holding its repository and branch, so pushes to that branch
 * deploy it too. Ids are the UUIDs the Kiln ids encode (prefixed ids are accepted as well); lists are bare
 * arrays, newest first; errors are `{"error": "not_found", "message": "Build not found"}` and the like.
 */
import {
  type Access,
  App,
  AppVersion,
  type Build,
  BuildState,
  Fields,
  Id,
  Query,
  SourceStore,
  Storage,
  Trigger
} from "@kiln/core"
import { DateTime, Effect, Option, Stream } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal, type DeploymentBuildView, DeploymentsApi, type DeploymentView } from "../Api.ts"
import * as ApiError from "../ApiError.ts"
import * as ArchiveUpload from "./archiveUpload.ts"
import { requireRole } from "./authorization.ts"
import { toDeploymentStatus } from "./dialectStatus.ts"
import { fromStorage, fromStorageWrite } from "./errors.ts"
import { refusal } from "./gitSources.ts"
import { lookUp } from "./ids.ts"
import { everyRow, jsonArray } from "./lists.ts"
import { plainText } from "./logText.ts"
import * as LogTickets from "./logTickets.ts"

/** The trigger that makes an app a git deployment. */
const deploymentTrigger = "deployment"

const iso = (at: DateTime.Utc | null) => (at === null ? null : DateTime.formatIso(at))

/**
 * How many builds a list reads from storage at once; the whole list streams, a page at a time. With 500,
 * serving 100,000 builds grew the server by ~15 MB; with 2,000, by ~80 MB, and no faster (`npm run bench -- deployments`).
 */
const buildsPerPage = 500

/** A `source_type` that says otherwise than `repo_url` (and `branch`): a 400 that names both, before anything is made. */
const sourceContradiction = (payload: {
  readonly source_type?: "git" | "archive"
  readonly repo_url?: string | null
  readonly branch?: string | null
}) => {
  const hasRepository = payload.repo_url !== undefined && payload.repo_url !== null
  if (payload.source_type === "git" && !hasRepository) {
    return Effect.fail(ApiError.badRequest("invalid_request", 'repo_url: needed when source_type is "git"'))
  }
  if (payload.source_type === "archive" && (hasRepository || (payload.branch ?? null) !== null)) {
    return Effect.fail(
      ApiError.badRequest(
        "invalid_request",
        `${hasRepository ? "repo_url" : "branch"}: an archive deployment has none; leave it out, or set source_type to "git"`
      )
    )
  }
  return Effect.void
}

export const buildView = (build: Build.Build): DeploymentBuildView => ({
  id: Id.toUuid(build.id),
  deployment_id: Id.toUuid(build.entityId),
  status: toDeploymentStatus(BuildState.stateOf(build)),
  commit_sha: build.commitSha,
  image_tag: build.imageTag,
  started_at: iso(build.startedAt),
  finished_at: iso(build.completedAt)
})

export const layer = HttpApiBuilder.group(DeploymentsApi, "deployments", (handlers) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const sources = yield* SourceStore.SourceStore

    // This dialect never answers a total, and counting reads every matching row (every build of an app).
    const query = <Name extends string>(
      table: Fields.Table<never, Name | Query.Listed>,
      access: Access.Access,
      params: Query.Params
    ) =>
      Query.fromParams(table, access, params).pipe(
        Effect.map((parsed): Query.ListQuery<Name | Query.Listed> => ({ ...parsed, countTotal: false })),
        Effect.orDie
      )

    /** The deployment's git settings: its live `deployment` trigger, if it has one. */
    const gitOf = (access: Access.Access, app: App.App) =>
      Effect.gen(function* () {
        const found = yield* storage.listTriggers(
          access,
          yield* query(Fields.triggers, access, {
            app_id: app.id,
            filter: JSON.stringify({ name: { eq: deploymentTrigger }, deletedAt: { isNull: true } }),
            limit: "1"
          })
        )
        return Option.fromNullishOr(found.rows[0] as Trigger.Trigger | undefined)
      }).pipe(Effect.orDie)

    /** The deployment's builds, newest first, `limit` at a time. */
    const buildsOf = (access: Access.Access, app: App.App, limit: number) =>
      Effect.map(query(Fields.builds, access, { app_id: app.id }), (newestFirst) => ({
        ...newestFirst,
        limit
      }))

    const view = (access: Access.Access, app: App.App) =>
      Effect.gen(function* () {
        const git = yield* gitOf(access, app)
        const [newest] = (yield* Effect.orDie(storage.listBuilds(access, yield* buildsOf(access, app, 1))))
          .rows
        return {
          id: Id.toUuid(app.id),
          name: app.name,
          subdomain: app.handle,
          repo_url: Option.match(git, { onNone: () => null, onSome: (t) => t.repository }),
          branch: Option.match(git, { onNone: () => null, onSome: (t) => t.branchIncludes[0] ?? null }),
          dockerfile_path: app.build.dockerfilePath,
          source_type: Option.isSome(git) ? ("git" as const) : ("archive" as const),
          status:
            newest === undefined ? ("created" as const) : toDeploymentStatus(BuildState.stateOf(newest)),
          created_at: DateTime.formatIso(app.createdAt),
          updated_at: DateTime.formatIso(app.updatedAt)
        } satisfies DeploymentView
      })

    const deploymentOf = (access: Access.Access, text: string) =>
      fromStorage(
        lookUp("app", text, (id) => storage.getApp(access, id), ApiError.NotFound.of("Deployment not found"))
      )

    /** The build the path names, when it is a build of the deployment the path names. */
    const buildOf = (access: Access.Access, deploymentId: string, buildId: string) =>
      Effect.gen(function* () {
        const app = yield* deploymentOf(access, deploymentId)
        const build = yield* fromStorage(
          lookUp(
            "bld",
            buildId,
            (id) => storage.getBuild(access, id),
            ApiError.NotFound.of("Build not found")
          )
        )
        return build.entityId === app.id ? build : yield* ApiError.NotFound.of("Build not found")
      })

    /** The workspace a new deployment goes to: the one named, or the token's only one. */
    const workspaceFor = (access: Access.Access, named: string | undefined) =>
      Effect.gen(function* () {
        const only = access._tag === "Workspaces" && access.ids.size === 1 ? [...access.ids][0] : undefined
        const text = named ?? only
        if (text === undefined) {
          return yield* ApiError.badRequest(
            "invalid_request",
            "workspace_id: needed when the token covers more than one workspace"
          )
        }
        return yield* fromStorage(
          lookUp(
            "wsp",
            text,
            (id) => storage.getWorkspace(access, id),
            ApiError.NotFound.of("Workspace not found")
          )
        )
      })

    return handlers
      .handle("list", () =>
        Effect.gen(function* () {
          const { access } = yield* Effect.service(CurrentPrincipal)
          const apps = everyRow(Fields.apps, yield* query(Fields.apps, access, {}), (q) =>
            storage.listApps(access, q)
          )
          return jsonArray(
            Stream.mapArrayEffect(apps, (page) => Effect.forEach(page, (app) => view(access, app)))
          )
        })
      )
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("write")
          yield* sourceContradiction(payload)
          const refused =
            payload.repo_url === undefined || payload.repo_url === null
              ? undefined
              : refusal(
                  sources,
                  { url: payload.repo_url, ref: payload.branch ?? "main" },
                  { url: "payload.repo_url", ref: "payload.branch" }
                )
          if (refused !== undefined) return yield* ApiError.badRequest("invalid_request", refused)
          const workspace = yield* workspaceFor(principal.access, payload.workspace_id)
          const app = yield* fromStorageWrite(
            storage.createApp(principal.access, {
              workspaceId: workspace.id,
              handle: payload.subdomain,
              name: payload.name,
              kind: "deployment",
              build: {
                ...App.defaultBuildSettings,
                dockerfilePath: payload.dockerfile_path ?? App.defaultBuildSettings.dockerfilePath
              }
            })
          )
          if (payload.repo_url !== undefined && payload.repo_url !== null) {
            yield* fromStorage(
              storage.createTrigger(
                principal.access,
                Trigger.input(app.id, deploymentTrigger, {
                  repository: payload.repo_url,
                  branchIncludes: [payload.branch ?? "main"],
                  cachingEnabled: true
                })
              )
            )
          }
          return yield* view(principal.access, app)
        })
      )
      .handle("get", ({ params }) =>
        Effect.gen(function* () {
          const principal = yield* Effect.service(CurrentPrincipal)
          return yield* view(principal.access, yield* deploymentOf(principal.access, params.deployment_id))
        })
      )
      .handle("upload", ({ params, payload }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("write")
          const app = yield* deploymentOf(principal.access, params.deployment_id)
          // The archive first: an upload refused or cut off leaves no version behind.
          const stored = yield* ArchiveUpload.store(
            sources,
            payload as Stream.Stream<unknown, unknown>,
            app.build.dockerfilePath
          )
          const version = yield* fromStorage(
            storage.createAppVersion(principal.access, { appId: app.id, source: { type: "archive" } })
          )
          yield* fromStorageWrite(
            storage.resolveAppVersion(principal.access, version.id, AppVersion.archiveStored(stored))
          )
          return { status: "uploaded" as const, size: stored.sizeBytes }
        })
      )
      .handle("deploy", ({ params }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("write")
          const app = yield* deploymentOf(principal.access, params.deployment_id)
          const git = yield* gitOf(principal.access, app)
          const version = Option.isSome(git)
            ? yield* gitVersion(principal.access, app, git.value)
            : yield* newestUpload(principal.access, app)
          const build = yield* fromStorageWrite(
            storage.createBuild(principal.access, {
              appVersionId: version.id,
              trigger: "manual",
              createdBy: principal.name
            })
          )
          return buildView(build)
        })
      )
      .handle("builds", ({ params }) =>
        Effect.gen(function* () {
          const principal = yield* Effect.service(CurrentPrincipal)
          const app = yield* deploymentOf(principal.access, params.deployment_id)
          const builds = everyRow(Fields.builds, yield* buildsOf(principal.access, app, buildsPerPage), (q) =>
            storage.listBuilds(principal.access, q)
          )
          return jsonArray(Stream.map(builds, buildView))
        })
      )
      .handle("build", ({ params }) =>
        Effect.gen(function* () {
          const principal = yield* Effect.service(CurrentPrincipal)
          return buildView(yield* buildOf(principal.access, params.deployment_id, params.build_id))
        })
      )
      .handle("logs", ({ params }) =>
        Effect.gen(function* () {
          const principal = yield* Effect.service(CurrentPrincipal)
          const build = yield* buildOf(principal.access, params.deployment_id, params.build_id)
          const unavailable = ApiError.NotFound.of("Build logs not available")
          if (build.phase === "queued") return yield* unavailable
          const text = yield* Effect.orDie(plainText(storage, principal.access, build.id, 0))
          // Cancelled before it logged, or retention expired its log: there is nothing to show.
          return text.empty ? yield* unavailable : text.response
        })
      )
      .handle("logTicket", ({ params }) =>
        Effect.gen(function* () {
          const principal = yield* Effect.service(CurrentPrincipal)
          const { ticket, expiresAt } = yield* LogTickets.issue(
            principal,
            buildOf(principal.access, params.deployment_id, params.build_id)
          )
          return {
            ticket,
            url: yield* LogTickets.streamUrl(ticket),
            expires_at: DateTime.formatIso(expiresAt)
          }
        })
      )

    /** A git deployment builds its branch's head, resolved now. */
    function gitVersion(access: Access.Access, app: App.App, trigger: Trigger.Trigger) {
      return Effect.gen(function* () {
        const repository = trigger.repository!
        const branch = trigger.branchIncludes[0] ?? "main"
        const version = yield* fromStorage(
          storage.createAppVersion(access, {
            appId: app.id,
            source: { type: "git", url: repository, ref: branch }
          })
        )
        const commit = yield* sources
          .resolveGit(repository, branch)
          .pipe(
            Effect.catch((error) =>
              error.reason === "Unavailable"
                ? Effect.die(error)
                : fromStorageWrite(
                    storage.resolveAppVersion(access, version.id, { status: "failed", error: error.message })
                  ).pipe(
                    Effect.andThen(
                      Effect.fail(ApiError.Conflict.of(`${repository} ${branch}: ${error.message}`))
                    )
                  )
            )
          )
        return yield* fromStorageWrite(
          storage.resolveAppVersion(access, version.id, { status: "ready", ...commit })
        )
      })
    }

    /** An archive deployment builds its newest upload. */
    function newestUpload(access: Access.Access, app: App.App) {
      return Effect.gen(function* () {
        const page = yield* storage
          .listAppVersions(
            access,
            yield* query(Fields.appVersions, access, {
              app_id: app.id,
              filter: JSON.stringify({ status: { eq: "ready" }, sourceType: { eq: "archive" } }),
              limit: "1"
            })
          )
          .pipe(Effect.orDie)
        const newest = page.rows[0]
        return newest === undefined
          ? yield* ApiError.Conflict.of("nothing to deploy yet: upload an archive first")
          : newest
      })
    }
  })
)
