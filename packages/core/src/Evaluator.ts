/**
 * The in-memory evaluator of list queries: filter, order, keyset and page information with exactly the
 * semantics the SQL compiler produces. It backs `Storage.layerMemory`, and it is the oracle the property
 * tests hold every SQL storage to.
 *
 * Strings compare by code point, as SQLite's BINARY collation and Postgres' "C" collation do (JavaScript's
 * `<` compares UTF-16 code units, which orders astral characters differently).
 */
import * as Access from "./Access.ts"
import { type Entity, type Field, type Rows, relationOf, type Scalar, type Table, tables } from "./Fields.ts"
import type { Filter } from "./Filter.ts"
import type { SortKey } from "./OrderBy.ts"
import { reverse } from "./OrderBy.ts"
import type { ListQuery, ListResult } from "./Query.ts"

/** Finds the rows a filter's relations reach. */
export interface Resolve {
  /** The row of `entity` with this id, if there is one: what a to-one relation names. */
  readonly one: <E extends Entity>(entity: E, id: string) => Rows[E] | undefined
  /** The rows of `entity` that belong to the row with this id (a build's steps): a to-many relation. */
  readonly many: <E extends Entity>(entity: E, id: string) => ReadonlyArray<Rows[E]>
}

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

const compareOp = (field: Field, value: Scalar, op: string, operand: Exclude<Scalar, null>): boolean => {
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
export const matches = <Row, Name extends string>(
  table: Table<Row, Name>,
  filter: Filter<Name>,
  row: Row,
  resolve: Resolve
): boolean => {
  switch (filter._tag) {
    case "And":
      return filter.filters.every((f) => matches(table, f, row, resolve))
    case "Or":
      return filter.filters.some((f) => matches(table, f, row, resolve))
    case "Not":
      return !matches(table, filter.filter, row, resolve)
    case "Compare": {
      const field = table.fields[filter.field]
      return compareOp(field, field.get(row), filter.op, filter.value)
    }
    case "In": {
      const value = table.fields[filter.field].get(row)
      const found = value !== null && filter.values.some((v) => compareScalars(value, v) === 0)
      return filter.negate ? !found : found
    }
    case "IsNull":
      return (table.fields[filter.field].get(row) === null) === filter.isNull
    case "Related": {
      const relation = relationOf(table, filter.relation)!
      // A to-one relation names the related row in one of this row's columns; a to-many one is keyed by
      // this row's id.
      const column = relation.kind === "one" ? relation.column : "id"
      const holder = Object.values<Field<Row>>(table.fields).find((field) => field.column === column)!
      return matchesRelated(relation.entity, holder.get(row), filter, resolve)
    }
  }
}

const matchesRelated = <E extends Entity>(
  entity: E,
  key: Scalar,
  filter: Extract<Filter, { readonly _tag: "Related" }>,
  resolve: Resolve
): boolean => {
  const target: Table<Rows[E]> = tables[entity]
  const matchesRow = (row: Rows[E]) => matches(target, filter.filter, row, resolve)
  if (filter.quantifier === "one") {
    const related = typeof key === "string" ? resolve.one(entity, key) : undefined
    return related !== undefined && matchesRow(related)
  }
  const many = typeof key === "string" ? resolve.many(entity, key) : []
  if (filter.quantifier === "some") return many.some(matchesRow)
  if (filter.quantifier === "none") return !many.some(matchesRow)
  return many.every(matchesRow)
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
export const visible = <Row>(table: Table<Row>, access: Access.Access, row: Row): boolean => {
  if (access._tag === "All") return true
  switch (table.scope.kind) {
    case "none":
      return true
    case "token":
      return table.scope.visible(access, row)
    case "column":
      return Access.allows(access, table.scope.workspaceOf(row))
  }
}

/** Answers a list query over all rows of a table, as a SQL storage must. */
export const list = <Row, Name extends string>(
  table: Table<Row, Name>,
  rows: Iterable<Row>,
  access: Access.Access,
  query: ListQuery<Name>,
  resolve: Resolve
): ListResult<Row> => {
  const positionOf = (row: Row) => query.orderBy.map((key) => table.fields[key.field].get(row))
  const sorted = Array.from(rows)
    .filter((row) => visible(table, access, row))
    .filter((row) => query.filter === undefined || matches(table, query.filter, row, resolve))
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
export const readingOrder = <Name extends string>(query: ListQuery<Name>): ReadonlyArray<SortKey<Name>> =>
  query.cursor?.direction === "before" ? reverse(query.orderBy) : query.orderBy
