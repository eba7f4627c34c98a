/**
 * Multi-key ordering (DESIGN.md §4): an array of one-key objects applied in order, each direction one of
 * `asc`, `desc` and their four explicit-nulls variants. Plain `asc` puts nulls last and plain `desc` puts
 * them first, identically on every storage. `id` always ends the order, so it is total.
 */
import { Result } from "effect"
import { type Field, hasField, type Table } from "./Fields.ts"
import { InvalidQuery, pathOf } from "./Filter.ts"

export const directions = [
  "asc",
  "desc",
  "asc_nulls_first",
  "asc_nulls_last",
  "desc_nulls_first",
  "desc_nulls_last"
] as const
export type Direction = (typeof directions)[number]

/** One key of an order over a table whose fields are `Name`s. */
export interface SortKey<Name extends string = string> {
  readonly field: Name
  readonly ascending: boolean
  readonly nullsFirst: boolean
}

export const maxKeys = 4

const fromDirection = <Name extends string>(field: Name, direction: Direction): SortKey<Name> => {
  const ascending = direction.startsWith("asc")
  const nullsFirst = direction.endsWith("nulls_first") || direction === "desc"
  return { field, ascending, nullsFirst }
}

/** The order used when a client gives none: newest first. */
export const defaultOrder: ReadonlyArray<SortKey<"createdAt">> = [fromDirection("createdAt", "desc")]

/** Completes an order with the `id` tie-breaker, in the direction of the last key. */
export const complete = <Name extends string>(
  keys: ReadonlyArray<SortKey<Name>>
): ReadonlyArray<SortKey<Name | "id">> => {
  if (keys.some((key) => key.field === "id")) return keys
  const ascending = keys[keys.length - 1]?.ascending ?? true
  return [...keys, fromDirection("id", ascending ? "asc" : "desc")]
}

/** The same order, reversed: how `before` pages are read. */
export const reverse = <Name extends string>(
  keys: ReadonlyArray<SortKey<Name>>
): ReadonlyArray<SortKey<Name>> =>
  keys.map((key) => ({ ...key, ascending: !key.ascending, nullsFirst: !key.nullsFirst }))

/** A stable text naming the order; cursors are bound to it. */
export const signature = (keys: ReadonlyArray<SortKey>): string =>
  keys.map((key) => `${key.field}:${key.ascending ? "a" : "d"}${key.nullsFirst ? "f" : "l"}`).join(",")

const fail = (message: string) => Result.fail(new InvalidQuery({ parameter: "orderBy", message }))

/** Parses an order already decoded from JSON; the result ends with `id`. */
export const fromJson = <Name extends string>(
  table: Table<never, Name>,
  input: unknown
): Result.Result<ReadonlyArray<SortKey<Name | "id">>, InvalidQuery> => {
  if (!Array.isArray(input)) return fail(`orderBy: expected an array such as [{"createdAt":"desc"}]`)
  if (input.length === 0) return fail("orderBy: expected at least one key")
  if (input.length > maxKeys) return fail(`orderBy: at most ${maxKeys} keys`)
  const keys: Array<SortKey<Name>> = []
  for (const [i, item] of input.entries()) {
    const at = `orderBy[${i}]`
    const entries =
      typeof item === "object" && item !== null && !Array.isArray(item) ? Object.entries(item) : []
    if (entries.length !== 1)
      return fail(`${at}: expected an object with one field, such as {"createdAt":"desc"}`)
    const [[name, direction]] = entries as [[string, unknown]]
    if (!hasField(table, name) || !table.fields[name].sort) {
      const sortable = Object.entries<Field>(table.fields)
        .filter(([, field]) => field.sort)
        .map(([f]) => f)
      return fail(
        `${pathOf(at, [name])}: not a sortable field of ${table.entity}; use one of ${sortable.join(", ")}`
      )
    }
    if (!directions.includes(direction as Direction)) {
      return fail(`${pathOf(at, [name])}: expected one of ${directions.join(", ")}`)
    }
    if (keys.some((key) => key.field === name))
      return fail(`${pathOf(at, [name])}: the field is already ordered on`)
    keys.push(fromDirection(name, direction as Direction))
  }
  return Result.succeed(complete(keys))
}

/** Parses an order as it arrives on a query string (JSON text). */
export const parse = <Name extends string>(
  table: Table<never, Name>,
  text: string
): Result.Result<ReadonlyArray<SortKey<Name | "id">>, InvalidQuery> => {
  if (text.length > 1024) return fail("orderBy: longer than 1 KiB")
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return fail("orderBy: not valid JSON")
  }
  return fromJson(table, json)
}
