/**
 * The in-memory evaluator of list queries: filter, order, keyset and page information with exactly the
 * semantics the SQL compiler produces. It backs `Storage.layerMemory`, and it is the oracle the property
 * tests hold every SQL storage to.
 *
 * Strings compare by code point, as SQLite's BINARY collation and Postgres' "C" collation do (JavaScript's
 * `<` compares UTF-16 code units, which orders astral characters differently).
 */
import * as Access from "./Access.ts"
import type { ApiToken } from "./ApiToken.ts"
import { visibleTo } from "./ApiToken.ts"
import { type Field, fieldOf, relationOf, type Scalar, type Table, tables } from "./Fields.ts"
import type { Filter } from "./Filter.ts"
import type { SortKey } from "./OrderBy.ts"
import { reverse } from "./OrderBy.ts"
import type { ListQuery, ListResult } from "./Query.ts"

/** Finds related rows: the one row a to-one relation names, or the rows of a to-many relation. */
export type Resolve = (
  table: Table<unknown>,
  relation: string,
  row: unknown
) => unknown | ReadonlyArray<unknown>

export const compareStrings = (a: string, b: string): number => {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) {
    const x = a.codePointAt(i)!
    const y = b.codePointAt(i)!
    if (x !== y) return x < y ? -1 : 1
    if (x > 0xffff) i++
  }
  return a.length - b.length === 0 ? 0 : a.length < b.length ? -1 : 1
}

const compareScalars = (a: Exclude<Scalar, null>, b: Exclude<Scalar, null>): number =>
  typeof a === "string" && typeof b === "string" ? compareStrings(a, b) : a < b ? -1 : a > b ? 1 : 0

const compareOp = (
  field: Field<unknown>,
  value: Scalar,
  op: string,
  operand: Exclude<Scalar, null>
): boolean => {
  if (value === null) return op === "neq"
  if (field.type === "string" || field.type === "enum") {
    const text = value as string
    const pattern = operand as string
    if (op === "contains") return text.includes(pattern)
    if (op === "startsWith") return text.startsWith(pattern)
    if (op === "endsWith") return text.endsWith(pattern)
  }
  const order = compareScalars(value, operand)
  switch (op) {
    case "eq":
      return order === 0
    case "neq":
      return order !== 0
    case "lt":
      return order < 0
    case "lte":
      return order <= 0
    case "gt":
      return order > 0
    default:
      return order >= 0
  }
}

/** Whether a row matches a filter. Every predicate is two-valued (see Filter). */
export const matches = (table: Table<unknown>, filter: Filter, row: unknown, resolve: Resolve): boolean => {
  switch (filter._tag) {
    case "And":
      return filter.filters.every((f) => matches(table, f, row, resolve))
    case "Or":
      return filter.filters.some((f) => matches(table, f, row, resolve))
    case "Not":
      return !matches(table, filter.filter, row, resolve)
    case "Compare": {
      const field = fieldOf(table, filter.field)!
      return compareOp(field, field.get(row), filter.op, filter.value)
    }
    case "In": {
      const value = fieldOf(table, filter.field)!.get(row)
      const found = value !== null && filter.values.some((v) => compareScalars(value, v) === 0)
      return filter.negate ? !found : found
    }
    case "IsNull":
      return (fieldOf(table, filter.field)!.get(row) === null) === filter.isNull
    case "Related": {
      const relation = relationOf(table, filter.relation)!
      const target = tables[relation.entity]
      const related = resolve(table, filter.relation, row)
      if (filter.quantifier === "one")
        return related !== undefined && matches(target, filter.filter, related, resolve)
      const many = related as ReadonlyArray<unknown>
      if (filter.quantifier === "some") return many.some((r) => matches(target, filter.filter, r, resolve))
      if (filter.quantifier === "none") return !many.some((r) => matches(target, filter.filter, r, resolve))
      return many.every((r) => matches(target, filter.filter, r, resolve))
    }
  }
}

/** Orders two positions (sort values, key by key) as the order says, nulls where it puts them. */
export const comparePositions = (
  keys: ReadonlyArray<SortKey>,
  a: ReadonlyArray<Scalar>,
  b: ReadonlyArray<Scalar>
): number => {
  for (const [i, key] of keys.entries()) {
    const x = a[i]!
    const y = b[i]!
    if (x === null && y === null) continue
    if (x === null) return key.nullsFirst ? -1 : 1
    if (y === null) return key.nullsFirst ? 1 : -1
    const order = compareScalars(x, y)
    if (order !== 0) return key.ascending ? order : -order
  }
  return 0
}

/** Whether a caller's scope lets it see a row of the table. */
export const visible = (table: Table<unknown>, access: Access.Access, row: unknown): boolean => {
  if (access._tag === "All") return true
  switch (table.scope.kind) {
    case "none":
      return true
    case "token":
      return visibleTo(access, row as ApiToken)
    case "column": {
      const column = table.scope.column
      const field = Object.values(table.fields).find((f) => f.column === column)!
      return Access.allows(access, field.get(row) as never)
    }
  }
}

/** Answers a list query over all rows of a table, as a SQL storage must. */
export const list = <Row>(
  table: Table<Row>,
  rows: Iterable<Row>,
  access: Access.Access,
  query: ListQuery,
  resolve: Resolve
): ListResult<Row> => {
  const generic = table as Table<unknown>
  const positionOf = (row: Row) => query.orderBy.map((key) => table.fields[key.field]!.get(row))
  const sorted = Array.from(rows)
    .filter((row) => visible(generic, access, row))
    .filter((row) => query.filter === undefined || matches(generic, query.filter, row, resolve))
    .map((row) => ({ row, position: positionOf(row) }))
    .sort((a, b) => comparePositions(query.orderBy, a.position, b.position))
  const total = sorted.length
  const cursor = query.cursor
  if (cursor === undefined) {
    return {
      rows: sorted.slice(0, query.limit).map((entry) => entry.row),
      total,
      hasNextPage: total > query.limit,
      hasPreviousPage: false
    }
  }
  // Index of the first row strictly after the cursor (after), or at or after it (before).
  const boundary = sorted.findIndex((entry) => {
    const order = comparePositions(query.orderBy, entry.position, cursor.values)
    return cursor.direction === "after" ? order > 0 : order >= 0
  })
  const at = boundary === -1 ? total : boundary
  if (cursor.direction === "after") {
    return {
      rows: sorted.slice(at, at + query.limit).map((entry) => entry.row),
      total,
      hasNextPage: at + query.limit < total,
      hasPreviousPage: at > 0
    }
  }
  const from = Math.max(0, at - query.limit)
  return {
    rows: sorted.slice(from, at).map((entry) => entry.row),
    total,
    hasNextPage: at < total,
    hasPreviousPage: from > 0
  }
}

/** The order a `before` page is read in; exported for storages that page backwards. */
export const readingOrder = (query: ListQuery): ReadonlyArray<SortKey> =>
  query.cursor?.direction === "before" ? reverse(query.orderBy) : query.orderBy
