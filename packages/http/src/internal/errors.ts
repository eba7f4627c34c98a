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

type StorageFailure = Storage.NotFound | Storage.Conflict | Storage.StorageError

type Mapped<E> =
  | Exclude<E, StorageFailure>
  | (Extract<E, Storage.NotFound> extends never ? never : ApiError.NotFound)
  | (Extract<E, Storage.Conflict> extends never ? never : ApiError.Conflict)

/**
 * Not found and conflict keep their message; a storage failure is a defect (a 500 with a request id).
 * Each branch is one member of `Mapped<E>`, which TypeScript cannot work out for an `E` not yet known.
 */
export const fromStorage = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, Mapped<E>, R> =>
  Effect.catch(effect, (error): Effect.Effect<never, Mapped<E>> => {
    if (error instanceof Storage.NotFound)
      return Effect.fail(ApiError.NotFound.of(error.message) as Mapped<E>)
    if (error instanceof Storage.Conflict)
      return Effect.fail(ApiError.Conflict.of(error.message) as Mapped<E>)
    if (error instanceof Storage.StorageError) return Effect.die(error)
    return Effect.fail(error as Mapped<E>)
  })

/** An upload the source store refused: too large is 413, anything else about the archive is 400. */
export const fromSource = (
  error: SourceStore.SourceError
): Effect.Effect<never, ApiError.BadRequest | ApiError.PayloadTooLarge> =>
  error.reason === "TooLarge"
    ? Effect.fail(ApiError.PayloadTooLarge.of(error.message))
    : error.reason === "Unavailable"
      ? Effect.die(error)
      : Effect.fail(ApiError.badRequest("invalid_archive", error.message))
