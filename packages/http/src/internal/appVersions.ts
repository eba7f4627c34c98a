/**
 * `/api/app-versions`. A git source the source store would not fetch from (a path on the server's disk,
 * say) is refused with a 400. A git version given by commit is ready at once; given by ref, the ref is
 * resolved now (the version is stored failed, with git's reason, if it cannot be). An archive version waits
 * for its upload — `application/gzip`, or multipart as `archiveUpload.ts` reads it — which the source store
 * checks whole before anything is built from it.
 */
import { AppVersion, Fields, SourceStore, Storage } from "@kiln/core"
import { Effect, type Stream } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal, KilnApi } from "../Api.ts"
import * as ApiError from "../ApiError.ts"
import * as ArchiveUpload from "./archiveUpload.ts"
import { requireRole } from "./authorization.ts"
import { fromStorage, fromStorageWrite } from "./errors.ts"
import { refusal } from "./gitSources.ts"
import { canonicalId } from "./ids.ts"
import { list } from "./lists.ts"

export const layer = HttpApiBuilder.group(KilnApi, "appVersions", (handlers) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const sources = yield* SourceStore.SourceStore
    return handlers
      .handle("list", ({ query }) => list(Fields.appVersions, query, storage.listAppVersions))
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("write")
          const refused =
            payload.source.type === "git"
              ? refusal(sources, payload.source, { url: "payload.source.url", ref: "payload.source.ref" })
              : undefined
          if (refused !== undefined) return yield* ApiError.badRequest("invalid_request", refused)
          const appId = yield* fromStorage(canonicalId("app", payload.appId))
          const version = yield* fromStorage(
            storage.createAppVersion(principal.access, {
              appId,
              source: payload.source
            })
          )
          const source = payload.source
          if (source.type !== "git" || source.commitSha !== undefined || source.ref === undefined)
            return version
          const resolved = yield* sources.resolveGit(source.url, source.ref).pipe(
            Effect.map((commit) => ({ status: "ready" as const, ...commit })),
            Effect.catch((error) =>
              error.reason === "Unavailable"
                ? Effect.die(error)
                : Effect.succeed({ status: "failed" as const, error: error.message })
            )
          )
          // Just created, so still pending: a conflict here would be a bug, not an answer.
          return yield* fromStorage(
            storage
              .resolveAppVersion(principal.access, version.id, resolved)
              .pipe(Effect.catchTag("StorageConflict", Effect.die))
          )
        })
      )
      .handle("get", ({ params }) =>
        Effect.flatMap(Effect.service(CurrentPrincipal), (principal) =>
          fromStorage(
            Effect.flatMap(canonicalId("ver", params.id), (id) => storage.getAppVersion(principal.access, id))
          )
        )
      )
      .handle("uploadArchive", ({ params, payload }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("write")
          const version = yield* fromStorage(
            Effect.flatMap(canonicalId("ver", params.id), (id) => storage.getAppVersion(principal.access, id))
          )
          if (version.source.type !== "archive" || version.status !== "pending") {
            return yield* ApiError.Conflict.of(
              version.source.type !== "archive"
                ? `app version ${version.id} is a git version: it takes no archive`
                : `app version ${version.id} is already ${version.status}`
            )
          }
          const app = yield* fromStorage(storage.getApp(principal.access, version.appId))
          const stored = yield* ArchiveUpload.store(
            sources,
            payload as Stream.Stream<unknown, unknown>,
            app.build.dockerfilePath
          )
          return yield* fromStorageWrite(
            storage.resolveAppVersion(principal.access, version.id, AppVersion.archiveStored(stored))
          )
        })
      )
  })
)
