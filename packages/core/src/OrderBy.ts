/**
 * Multi-key ordering (DESIGN.md §4): an array of one-key objects applied in order, each direction one of
 * `asc`, `desc` and their four explicit-nulls variants. Plain `asc` puts nulls last and plain `desc` puts
 * them first, identically on every storage. `id` always ends the order, so it is total.
 */
import { Result } from "effect"
import { fieldOf, type Table } from "./Fields.ts"
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

export interface SortKey {
  readonly field: string
  readonly ascending: boolean
  readonly nullsFirst: boolean
}

export const maxKeys = 4

const fromDirection = (field: string, direction: Direction): SortKey => {
  const ascending = direction.startsWith("asc")
  const nullsFirst = direction.endsWith("nulls_first") || direction === "desc"
  return { field, ascending, nullsFirst }
}

/** The order used when a client gives none: newest first. */
export const defaultOrder: ReadonlyArray<SortKey> = [fromDirection("createdAt", "desc")]

/** Completes an order with the `id` tie-breaker, in the direction of the last key. */
export const complete = (keys: ReadonlyArray<SortKey>): ReadonlyArray<SortKey> => {
  if (keys.some((key) => key.field === "id")) return keys
  const ascending = keys[keys.length - 1]?.ascending ?? true
  return [...keys, fromDirection("id", ascending ? "asc" : "desc")]
}

/** The same order, reversed: how `before` pages are read. */
export const reverse = (keys: ReadonlyArray<SortKey>): ReadonlyArray<SortKey> =>
  keys.map((key) => ({ ...key, ascending: !key.ascending, nullsFirst: !key.nullsFirst }))

/** A stable text naming the order; cursors are bound to it. */
export const signature = (keys: ReadonlyArray<SortKey>): string =>
  keys.map((key) => `${key.field}:${key.ascending ? "a" : "d"}${key.nullsFirst ? "f" : "l"}`).join(",")

const fail = (message: string) => Result.fail(new InvalidQuery({ parameter: "orderBy", message }))

/** Parses an order already decoded from JSON; the result ends with `id`. */
export const fromJson = (
  table: Table<unknown>,
  input: unknown
): Result.Result<ReadonlyArray<SortKey>, InvalidQuery> => {
  if (!Array.isArray(input)) return fail(`orderBy: expected an array such as [{"createdAt":"desc"}]`)
  if (input.length === 0) return fail("orderBy: expected at least one key")
  if (input.length > maxKeys) return fail(`orderBy: at most ${maxKeys} keys`)
  const keys: Array<SortKey> = []
  for (const [i, item] of input.entries()) {
    const at = `orderBy[${i}]`
    const entries =
      typeof item === "object" && item !== null && !Array.isArray(item) ? Object.entries(item) : []
    if (entries.length !== 1)
      return fail(`${at}: expected an object with one field, such as {"createdAt":"desc"}`)
    const [[name, direction]] = entries as [[string, unknown]]
    const field = fieldOf(table, name)
    if (field === undefined || !field.sort) {
      const sortable = Object.keys(table.fields).filter((f) => table.fields[f]!.sort)
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
export const parse = (
  table: Table<unknown>,
  text: string
): Result.Result<ReadonlyArray<SortKey>, InvalidQuery> => {
  if (text.length > 1024) return fail("orderBy: longer than 1 KiB")
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return fail("orderBy: not valid JSON")
  }
  return fromJson(table, json)
}
