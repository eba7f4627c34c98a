/**
 * Archive uploads, one reader for both routes that take them: `POST /api/app-versions/{id}/archive` and the
 * deployments dialect's `POST /api/v1/deployments/{id}/upload`. The body is a `.tar.gz` as it is (where the
 * route takes `application/gzip`), or multipart: an optional `dockerfile` part, then the file part
 * `archive`, and nothing else. A Dockerfile part replaces (or adds) the file at the app's Dockerfile path.
 *
 * A part's content can only be read while the multipart stream is open: once it ends (or moves past the
 * part), the parser behind it stops feeding that part and a late reader waits forever. So the parts are
 * read in order, each consumed inside the one walk over the stream.
 */
import type { SourceStore } from "@kiln/core"
import { BuildContext } from "@kiln/core/adapter"
import { ByteSize, Effect, Stream } from "effect"
import { HttpIncomingMessage, HttpServerRequest } from "effect/http"
import * as Multipart from "effect/http/Multipart"
import * as ApiError from "../ApiError.ts"
import { fromSource } from "./errors.ts"

/** The routes' paths: the guard leaves their bodies to the limits here, not to the 1 MiB JSON cap. */
export const isUploadPath = (url: string) =>
  /\/(app-versions\/[^/?]+\/archive|deployments\/[^/?]+\/upload)(\?|$)/.test(url)

const maxDockerfileBytes = 1024 * 1024
/** Room for the boundaries and part headers around the archive and the Dockerfile. */
const multipartOverheadBytes = 64 * 1024

const invalid = (message: string) => ApiError.badRequest("invalid_archive", message)

const sizeOf = (bytes: number) => ByteSize.format(ByteSize.bytes(bytes))

/** An upload past `maxBytes`, in the same words as the source store's own refusal. */
const tooLarge = (maxBytes: number) =>
  ApiError.PayloadTooLarge.of(`the upload is larger than ${sizeOf(maxBytes)}`)

const expected = "an upload takes an optional dockerfile part, then the file part archive"

/** What the multipart parser's failures mean to the client, in words. */
const refusalOf =
  (maxBytes: number) =>
  (error: unknown): ApiError.BadRequest | ApiError.PayloadTooLarge => {
    if (!Multipart.isMultipartError(error)) return invalid("the multipart body could not be read")
    const cause = error.reason.cause as { readonly _tag?: unknown; readonly limit?: unknown } | undefined
    const reason = cause?._tag === "ReachedLimit" ? cause.limit : (cause?._tag ?? error.reason._tag)
    switch (reason) {
      case "InvalidBoundary":
        return invalid("the content-type names no multipart boundary")
      case "EndNotReached":
        return invalid("the multipart body ends inside a part, before its closing boundary")
      case "BadHeaders":
        return invalid("a part's headers could not be read")
      case "InvalidDisposition":
        return invalid("a part has no form-data content-disposition with a name")
      case "MaxTotalSize":
      case "BodyTooLarge":
        return tooLarge(maxBytes)
      case "MaxFieldSize":
      case "FieldTooLarge":
        return ApiError.PayloadTooLarge.of(`a field part is larger than ${sizeOf(maxDockerfileBytes)}`)
      default:
        return invalid("the multipart body could not be read")
    }
  }

/** A part's bytes: a field's text, or a file's content, refused as soon as it passes 1 MiB (a Dockerfile). */
const dockerfileOf = (part: Multipart.Part, refusal: ReturnType<typeof refusalOf>) =>
  Multipart.isFile(part)
    ? Stream.runFoldEffect(
        Stream.mapError(part.content, refusal),
        () => new Uint8Array(),
        (all, chunk) => {
          if (all.length + chunk.length > maxDockerfileBytes) {
            return Effect.fail(
              ApiError.PayloadTooLarge.of(`the dockerfile part is larger than ${sizeOf(maxDockerfileBytes)}`)
            )
          }
          const next = new Uint8Array(all.length + chunk.length)
          next.set(all)
          next.set(chunk, all.length)
          return Effect.succeed(next)
        }
      )
    : Effect.succeed(new TextEncoder().encode((part as Multipart.Field).value))

/** A byte stream through a web `TransformStream` (gzip and gunzip here). */
const through = <E>(
  stream: Stream.Stream<Uint8Array, E>,
  transform: TransformStream<Uint8Array, Uint8Array>
) =>
  Stream.fromReadableStream({
    evaluate: () => Stream.toReadableStream(stream).pipeThrough(transform),
    onError: () => invalid("the archive is not a gzip-compressed tar")
  })

/**
 * Stores the upload in the request (`payload`, as HttpApi hands it over) and answers what was stored. A
 * body declared larger than the source store's cap is refused before a byte of it is read.
 */
export const store = (
  sources: SourceStore.SourceStoreShape,
  payload: Stream.Stream<unknown, unknown>,
  dockerfilePath: string
) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const put = (bytes: Stream.Stream<Uint8Array, ApiError.BadRequest | ApiError.PayloadTooLarge>) =>
      sources
        .putArchive(bytes)
        .pipe(
          Effect.catch((error) =>
            error instanceof ApiError.BadRequest || error instanceof ApiError.PayloadTooLarge
              ? Effect.fail(error)
              : fromSource(error)
          )
        )
    const multipart = (request.headers["content-type"] ?? "").startsWith("multipart/")
    const maxBytes = sources.maxArchiveBytes + (multipart ? maxDockerfileBytes + multipartOverheadBytes : 0)
    if (Number(request.headers["content-length"] ?? 0) > maxBytes) return yield* tooLarge(maxBytes)
    if (!multipart) {
      return yield* put(
        Stream.mapError(payload as Stream.Stream<Uint8Array, unknown>, () =>
          invalid("the request body could not be read")
        )
      )
    }

    const refusal = refusalOf(maxBytes)
    let dockerfile: Uint8Array | undefined
    let stored: SourceStore.StoredArchive | undefined
    yield* Stream.runForEach(
      Stream.mapError(payload as Stream.Stream<Multipart.Part, unknown>, refusal),
      (part): Effect.Effect<void, ApiError.BadRequest | ApiError.PayloadTooLarge> => {
        if (stored !== undefined) {
          return Effect.fail(
            invalid(
              part.key === "archive"
                ? "one archive part only"
                : part.key === "dockerfile"
                  ? "send the dockerfile part before the archive part"
                  : `part ${JSON.stringify(part.key)} comes after the archive: ${expected}`
            )
          )
        }
        if (part.key === "dockerfile") {
          if (dockerfile !== undefined) return Effect.fail(invalid("one dockerfile part only"))
          return Effect.map(dockerfileOf(part, refusal), (bytes) => {
            dockerfile = bytes
          })
        }
        if (part.key !== "archive") {
          return Effect.fail(invalid(`unexpected part ${JSON.stringify(part.key)}: ${expected}`))
        }
        if (!Multipart.isFile(part)) {
          return Effect.fail(invalid("the archive part must be a file: give it a filename"))
        }
        const bytes = Stream.mapError(part.content, refusal)
        return Effect.map(
          put(
            dockerfile === undefined
              ? bytes
              : through(
                  BuildContext.replaceFile(
                    through(bytes, new DecompressionStream("gzip")),
                    dockerfilePath,
                    dockerfile
                  ),
                  new CompressionStream("gzip")
                )
          ),
          (archive) => {
            stored = archive
          }
        )
      }
    ).pipe(
      // The parser's own bounds: the whole body, and each field part it holds in memory.
      Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBytes)),
      Effect.provideService(Multipart.MaxFieldSize, ByteSize.bytes(maxDockerfileBytes))
    )
    return stored ?? (yield* invalid("the multipart body has no file part named archive"))
  })
