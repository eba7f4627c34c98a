/**
 * `/api/app-versions`. A git source the source store would not fetch from (a path on the server's disk,
 * say) is refused with a 400. A git version given by commit is ready at once; given by ref, the ref is
 * resolved now (the version is stored failed, with git's reason, if it cannot be). An archive version waits for
 * its upload — `application/gzip` or a multipart `archive` file — which the source store checks whole
 * before anything is built from it.
 */
import { AppVersion, Fields, SourceStore, Storage } from "@kiln/core"
import { Effect, Option, Stream } from "effect"
import { HttpServerRequest } from "effect/http"
import * as MultipartPart from "effect/http/Multipart"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal, KilnApi } from "../Api.ts"
import * as ApiError from "../ApiError.ts"
import { requireRole } from "./authorization.ts"
import { fromSource, fromStorage } from "./errors.ts"
import { refusal } from "./gitSources.ts"
import { list } from "./lists.ts"

const unreadable = (what: string) => () => ApiError.badRequest("invalid_archive", `${what} could not be read`)

/** The archive's bytes: the whole body, or the multipart file named `archive`. */
const archiveBytes = (payload: Stream.Stream<unknown, unknown>) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (!(request.headers["content-type"] ?? "").startsWith("multipart/")) {
      return Stream.mapError(payload as Stream.Stream<Uint8Array, unknown>, unreadable("the request body"))
    }
    const parts = Stream.mapError(
      payload as Stream.Stream<MultipartPart.Part, unknown>,
      unreadable("the multipart body")
    )
    const part = yield* Stream.runHead(
      Stream.filter(parts, (part) => MultipartPart.isFile(part) && part.key === "archive")
    )
    return yield* Option.match(part, {
      onNone: () =>
        Effect.fail(ApiError.badRequest("invalid_archive", "multipart body has no file part named archive")),
      onSome: (file) =>
        Effect.succeed(
          Stream.mapError((file as MultipartPart.File).content, unreadable("the multipart body"))
        )
    })
  })

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
          const version = yield* fromStorage(
            storage.createAppVersion(principal.access, {
              appId: payload.appId as never,
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
              .pipe(Effect.catchTag("Conflict", Effect.die))
          )
        })
      )
      .handle("get", ({ params }) =>
        Effect.flatMap(Effect.service(CurrentPrincipal), (principal) =>
          fromStorage(storage.getAppVersion(principal.access, params.id as never))
        )
      )
      .handle("uploadArchive", ({ params, payload }) =>
        Effect.gen(function* () {
          const principal = yield* requireRole("write")
          const version = yield* fromStorage(storage.getAppVersion(principal.access, params.id as never))
          if (version.source.type !== "archive" || version.status !== "pending") {
            return yield* ApiError.Conflict.of(
              version.source.type !== "archive"
                ? `app version ${version.id} is a git version: it takes no archive`
                : `app version ${version.id} is already ${version.status}`
            )
          }
          const bytes = yield* archiveBytes(payload as Stream.Stream<unknown, unknown>)
          const stored = yield* sources
            .putArchive(bytes)
            .pipe(
              Effect.catch((error) =>
                error instanceof ApiError.BadRequest ? Effect.fail(error) : fromSource(error)
              )
            )
          return yield* fromStorage(
            storage.resolveAppVersion(principal.access, version.id, AppVersion.archiveStored(stored))
          )
        })
      )
  })
)
