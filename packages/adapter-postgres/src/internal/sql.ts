/** The pieces the storage's statements are built from. Values are always bound parameters. */
import type { Statement } from "./connection.ts"

/**
 * Now on the database's clock, in epoch milliseconds. Leases are taken, renewed and reaped on this one
 * clock, so processes whose clocks disagree still agree on when a lease expires.
 */
export const databaseNow = "floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

/** A statement prepared once per connection, under a name of its own. */
export const prepared = (name: string, text: string): Statement => ({ name: `kiln_${name}`, text })

/** Columns as a select or insert list, each under `alias` when given. */
export const list = (columns: ReadonlyArray<string>, alias?: string) =>
  columns.map((column) => (alias === undefined ? column : `${alias}.${column}`)).join(", ")

export const placeholders = (count: number, from = 1) =>
  Array.from({ length: count }, (_, i) => `$${from + i}`).join(", ")

export const insertInto = (table: string, columns: ReadonlyArray<string>) =>
  `INSERT INTO ${table} (${list(columns)}) VALUES (${placeholders(columns.length)})`

/** A row's values in the order of `columns`, for the statements built from column lists. */
export const valuesOf = <Row>(row: Row, columns: ReadonlyArray<keyof Row>): Array<unknown> =>
  columns.map((column) => row[column])

/** `unnest($from::type[], …) AS alias(name, …)` over the given columns, numbering parameters from `from`. */
export const unnestOf = (
  alias: string,
  columns: ReadonlyArray<readonly [name: string, type: string]>,
  from = 1
) =>
  `unnest(${columns.map(([, type], i) => `$${from + i}::${type}[]`).join(", ")}) AS ${alias}(${columns
    .map(([name]) => name)
    .join(", ")})`
