/**
 * The list contract every resource shares: parse the parameters against the entity's field table
 * (scoped to the caller), run the storage's list, sign the page's cursors. And, for the dialects whose
 * lists are every row in one bare array, the whole list streamed from storage a page at a time.
 */
import type { Access, Fields, Storage } from "@kiln/core"
import { Query } from "@kiln/core"
import { Effect, Option, Stream } from "effect"
import { HttpServerResponse } from "effect/http"
import { CurrentPrincipal } from "../Api.ts"
import { fromQuery } from "./errors.ts"

export const list = <Row, Name extends string>(
  table: Fields.Table<Row, Name | Query.Listed>,
  params: Query.Params,
  run: (
    access: Access.Access,
    query: Query.ListQuery<Name | Query.Listed>
  ) => Effect.Effect<Query.ListResult<Row>, Storage.StorageError>
) =>
  Effect.gen(function* () {
    const principal = yield* Effect.service(CurrentPrincipal)
    const query = yield* fromQuery(Query.fromParams(table, principal.access, params))
    const result = yield* Effect.orDie(run(principal.access, query))
    return yield* Query.toPage(table, principal.access, query, result)
  })

/**
 * Every row `query` matches, in its order, read from storage one page (`query.limit` rows) at a time: each
 * page continues strictly after the last row of the one before (keyset), so a row is never sent twice
 * and the memory held is one page's, however many rows match. Each page is one chunk of the stream. No
 * page counts the total: that would read every matching row again for each page.
 */
export const everyRow = <Row, Name extends string, E>(
  table: Fields.Table<Row, Name>,
  query: Query.ListQuery<Name>,
  run: (query: Query.ListQuery<Name>) => Effect.Effect<Query.ListResult<Row>, E>
): Stream.Stream<Row, E> =>
  Stream.paginate<Query.ListQuery<Name>, Row, E>({ ...query, countTotal: false }, (current) =>
    Effect.map(run(current), (result) => {
      const last = result.rows.at(-1)
      const next: Query.ListQuery<Name> | undefined =
        result.hasNextPage && last !== undefined
          ? {
              ...current,
              cursor: { direction: "after", values: Query.positionOf(table, current.orderBy, last) }
            }
          : undefined
      return [result.rows, Option.fromUndefinedOr(next)] as const
    })
  )

/**
 * A JSON array answered as its items arrive, a chunk at a time, with the socket's backpressure: nothing
 * waits for the whole list. A failure after the first bytes can only cut the response short; the server
 * logs it.
 */
export const jsonArray = <A, E>(items: Stream.Stream<A, E>) =>
  HttpServerResponse.stream(
    Stream.make("[").pipe(
      Stream.concat(
        Stream.mapArray(items, (chunk, index) => [
          `${index === 0 ? "" : ","}${chunk.map((item) => JSON.stringify(item)).join(",")}`
        ])
      ),
      Stream.concat(Stream.make("]")),
      Stream.encodeText
    ),
    { contentType: "application/json" }
  )
