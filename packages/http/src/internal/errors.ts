/**
 * From core's typed errors to the API's bodies. Storage failures are defects here: the 500 they become
 * carries only a request id, and the cause goes to the log.
 */
import { type Cursor, type Filter, type SourceStore, Storage } from "@kiln/core"
import { Effect } from "effect"
import * as ApiError from "../ApiError.ts"

const codes: Record<string, ApiError.BadRequest["error"]> = {
  filter: "invalid_filter",
  orderBy: "invalid_order_by"
}

export const fromQuery = <A, R>(
  effect: Effect.Effect<A, Filter.InvalidQuery | Cursor.InvalidCursor, R>
): Effect.Effect<A, ApiError.BadRequest, R> =>
  Effect.mapError(effect, (error) =>
    error._tag === "InvalidCursor"
      ? ApiError.badRequest("invalid_cursor", error.message)
      : ApiError.badRequest(codes[error.parameter] ?? "invalid_parameter", error.message)
  )

/**
 * Whether an error is an instance of `Class`: a refinement that keeps the rest of a union known, so what a
 * handler can still fail with is worked out by the type checker rather than asserted.
 */
export const isA =
  <C>(Class: abstract new (...args: never) => C) =>
  <E>(error: E): error is Extract<E, C> =>
    error instanceof Class

/**
 * Storage's answers in a surface's words: not found keeps its message as a 404, and so does a conflict as
 * a 409 (only where the operation can conflict: `fromStorageWrite`); a storage failure is a defect (a 500
 * with a request id). Every other error passes through as it is.
 */
export const storageAnswers = <N, C>(notFound: (message: string) => N, conflict: (message: string) => C) => {
  const fromStorage = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.catchIf(
      Effect.catchIf(effect, isA(Storage.NotFound), (error) => Effect.fail(notFound(error.message))),
      isA(Storage.StorageError),
      Effect.die
    )
  const fromStorageWrite = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    fromStorage(
      Effect.catchIf(effect, isA(Storage.Conflict), (error) => Effect.fail(conflict(error.message)))
    )
  return { fromStorage, fromStorageWrite }
}

export const { fromStorage, fromStorageWrite } = storageAnswers(ApiError.NotFound.of, ApiError.Conflict.of)

/** An upload the source store refused: too large is 413, anything else about the archive is 400. */
export const fromSource = (
  error: SourceStore.SourceError
): Effect.Effect<never, ApiError.BadRequest | ApiError.PayloadTooLarge> =>
  error.reason === "TooLarge"
    ? Effect.fail(ApiError.PayloadTooLarge.of(error.message))
    : error.reason === "Unavailable"
      ? Effect.die(error)
      : Effect.fail(ApiError.badRequest("invalid_archive", error.message))
