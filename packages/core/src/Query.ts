/**
 * A list request and its page (the seed-000 list contract): `limit` (1–100, default 100), `after` or
 * `before`, `ids`, `filter`, `orderBy` and the entity's shorthand parameters, answered with
 * `{ data, pageInfo: { total, hasNextPage, hasPreviousPage, startCursor, endCursor } }`.
 *
 * Parsing turns the parameters into a `ListQuery` that storage executes; `toPage` signs the cursors of
 * the rows storage returns.
 */
import { Effect, Result } from "effect"
import type { Access } from "./Access.ts"
import * as Cursor from "./Cursor.ts"
import type { Scalar, Table } from "./Fields.ts"
import * as Filter from "./Filter.ts"
import * as OrderBy from "./OrderBy.ts"

/**
 * A list query over a table whose fields are `Name`s: `ListQuery<Fields.BuildField>` is a query over
 * builds, and a query over another table's fields does not type as one.
 */
export interface ListQuery<Name extends string = string> {
  /** Shorthands, `ids` and the client's filter, ANDed; undefined when there is none. */
  readonly filter: Filter.Filter<Name> | undefined
  /** Ends with `id`, so the order is total. */
  readonly orderBy: ReadonlyArray<OrderBy.SortKey<Name>>
  readonly limit: number
  readonly cursor: Cursor.Position | undefined
  /**
   * False skips counting `total`, which reads every matching row on each page: a reader that walks every
   * page and needs no total would pay for that once per page. Counted unless false.
   */
  readonly countTotal?: boolean | undefined
}

/** What storage answers for a list query: the page's rows in order, and exact page information. */
export interface ListResult<A> {
  readonly rows: ReadonlyArray<A>
  /** Rows matching scope and filter, ignoring the cursor; 0, or the count, when the query said `countTotal: false`. */
  readonly total: number
  readonly hasNextPage: boolean
  readonly hasPreviousPage: boolean
}

export interface PageInfo {
  readonly total: number
  readonly hasNextPage: boolean
  readonly hasPreviousPage: boolean
  readonly startCursor: string | null
  readonly endCursor: string | null
}

export interface Page<A> {
  readonly data: ReadonlyArray<A>
  readonly pageInfo: PageInfo
}

export const maxLimit = 100
export const maxIds = 100

/** The fields every listed table has: `id` ends every order, and `createdAt` is the default one. */
export type Listed = "id" | "createdAt"

/** The first `limit` rows in the default order (newest first), with no filter. */
export const first = (limit: number = maxLimit): ListQuery<Listed> => ({
  filter: undefined,
  orderBy: OrderBy.complete(OrderBy.defaultOrder),
  limit,
  cursor: undefined
})

/** The query parameters of a list, as strings; shorthands are looked up in the entity's table. */
export type Params = Readonly<Record<string, string | undefined>>

const invalid = (parameter: string, message: string) => new Filter.InvalidQuery({ parameter, message })

const parseLimit = (text: string | undefined): Result.Result<number, Filter.InvalidQuery> => {
  if (text === undefined) return Result.succeed(maxLimit)
  const limit = /^\d{1,3}$/.test(text) ? Number(text) : Number.NaN
  return limit >= 1 && limit <= maxLimit
    ? Result.succeed(limit)
    : Result.fail(invalid("limit", `limit: expected an integer from 1 to ${maxLimit}`))
}

const parseIds = (text: string): Result.Result<Filter.Filter<"id">, Filter.InvalidQuery> => {
  const ids = text.split(",").map((id) => id.trim())
  if (ids.length > maxIds) return Result.fail(invalid("ids", `ids: at most ${maxIds} ids`))
  const bad = ids.findIndex((id) => !/^[A-Za-z0-9_-]{1,100}$/.test(id))
  if (bad !== -1) return Result.fail(invalid("ids", `ids[${bad}]: expected an id such as bld_01jd…`))
  return Result.succeed({ _tag: "In", field: "id", values: ids, negate: false })
}

/** A shorthand parameter is `field eq value`, decoded like the same comparison in a filter. */
const parseShorthand = <Name extends string>(
  table: Table<never, Name>,
  parameter: string,
  fieldName: Name,
  text: string
): Result.Result<Filter.Filter<Name>, Filter.InvalidQuery> => {
  const value: unknown = table.fields[fieldName].type === "number" ? Number(text) : text
  return Result.mapError(Filter.fromJson(table, { [fieldName]: { eq: value } }, parameter), (error) =>
    invalid(parameter, error.message.replace(`${parameter}.${fieldName}.eq`, parameter))
  )
}

/** Parses a list's query parameters, verifying the cursor against the order and the caller's scope. */
export const fromParams = <Name extends string>(
  table: Table<never, Name | Listed>,
  access: Access,
  params: Params
): Effect.Effect<ListQuery<Name | Listed>, Filter.InvalidQuery | Cursor.InvalidCursor> =>
  Effect.gen(function* () {
    const limit = yield* Effect.fromResult(parseLimit(params.limit))
    const parts: Array<Filter.Filter<Name | Listed>> = []
    for (const [parameter, fieldName] of Object.entries(table.shorthands)) {
      const text = params[parameter]
      if (text !== undefined)
        parts.push(yield* Effect.fromResult(parseShorthand(table, parameter, fieldName, text)))
    }
    if (params.ids !== undefined) parts.push(yield* Effect.fromResult(parseIds(params.ids)))
    if (params.filter !== undefined) parts.push(yield* Effect.fromResult(Filter.parse(table, params.filter)))
    const orderBy =
      params.orderBy === undefined
        ? OrderBy.complete(OrderBy.defaultOrder)
        : yield* Effect.fromResult(OrderBy.parse(table, params.orderBy))
    if (params.after !== undefined && params.before !== undefined) {
      return yield* invalid("after", "after and before cannot be combined")
    }
    const direction = params.before !== undefined ? "before" : "after"
    const text = params.before ?? params.after
    const cursor =
      text === undefined ? undefined : yield* Cursor.decode(table, orderBy, access, direction, text)
    return { filter: parts.length === 0 ? undefined : Filter.and(parts), orderBy, limit, cursor }
  })

/** The sort values of a row, in the order's keys: what its cursor encodes. */
export const positionOf = <Row, Name extends string>(
  table: Table<Row, Name>,
  orderBy: ReadonlyArray<OrderBy.SortKey<Name>>,
  row: Row
) => orderBy.map((key): Scalar => table.fields[key.field].get(row))

/** Signs the cursors of a storage result's first and last rows. */
export const toPage = <Row, Name extends string>(
  table: Table<Row, Name>,
  access: Access,
  query: ListQuery<Name>,
  result: ListResult<Row>
): Effect.Effect<Page<Row>> =>
  Effect.gen(function* () {
    const cursorOf = (row: Row | undefined) =>
      row === undefined
        ? Effect.succeed(null)
        : Cursor.encode(table, query.orderBy, access, positionOf(table, query.orderBy, row))
    return {
      data: result.rows,
      pageInfo: {
        total: result.total,
        hasNextPage: result.hasNextPage,
        hasPreviousPage: result.hasPreviousPage,
        startCursor: yield* cursorOf(result.rows[0]),
        endCursor: yield* cursorOf(result.rows[result.rows.length - 1])
      }
    }
  })
