/**
 * The list contract every resource shares: parse the parameters against the entity's field table
 * (scoped to the caller), run the storage's list, sign the page's cursors.
 */
import type { Access, Fields, Storage } from "@kiln/core"
import { Query } from "@kiln/core"
import { Effect } from "effect"
import { CurrentPrincipal } from "../Api.ts"
import { fromQuery } from "./errors.ts"

export const list = <Row>(
  table: Fields.Table<Row>,
  params: Query.Params,
  run: (
    access: Access.Access,
    query: Query.ListQuery
  ) => Effect.Effect<Query.ListResult<Row>, Storage.StorageError>
) =>
  Effect.gen(function* () {
    const principal = yield* Effect.service(CurrentPrincipal)
    const query = yield* fromQuery(Query.fromParams(table as Fields.Table<unknown>, principal.access, params))
    const result = yield* Effect.orDie(run(principal.access, query))
    return yield* Query.toPage(table, principal.access, query, result)
  })
