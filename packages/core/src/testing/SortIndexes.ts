/**
 * The pages a SQL adapter must read from its sort indexes: for every field a table declares in
 * `sortIndexes`, each direction (both nulls orders of a nullable field), first and further pages — after a
 * value, after a null, before a value — compiled for a dialect. An adapter's test asks its database for
 * each one's plan and checks that no part of it reads the table without an index, nor sorts what it read
 * but for the part of the builds in flight (`Fields.builds.unsorted`), which are few.
 */
import { Result } from "effect"
import * as Access from "../Access.ts"
import * as Fields from "../Fields.ts"
import * as Filter from "../Filter.ts"
import * as OrderBy from "../OrderBy.ts"
import type { ListQuery } from "../Query.ts"
import * as Sql from "../Sql.ts"

export interface Page {
  readonly label: string
  readonly statement: Sql.Statement
}

/** A value of the field's type that a cursor could hold. */
const sample = (field: Fields.Field): Fields.Scalar =>
  field.type === "string" || field.type === "enum" ? "m" : 1_700_000_000_000

export const pages = (dialect: Sql.Dialect): ReadonlyArray<Page> => {
  const table = Fields.builds
  const all: Array<Page> = []
  for (const name of table.sortIndexes ?? []) {
    const field: Fields.Field = table.fields[name]
    const directions = OrderBy.directions.filter((direction) =>
      field.nullable ? direction.includes("nulls") : !direction.includes("nulls")
    )
    for (const direction of directions) {
      const orderBy = Result.getOrThrow(OrderBy.fromJson(table, [{ [name]: direction }]))
      const cursors: ReadonlyArray<ListQuery["cursor"]> = [
        undefined,
        { direction: "after", values: [sample(field), "bld_m"] },
        { direction: "before", values: [sample(field), "bld_m"] },
        ...(field.nullable ? [{ direction: "after" as const, values: [null, "bld_m"] }] : [])
      ]
      for (const cursor of cursors) {
        const query: ListQuery<Fields.BuildField> = { orderBy, limit: 100, filter: undefined, cursor }
        all.push({
          label: `${name} ${direction}${cursor === undefined ? "" : ` ${cursor.direction} ${cursor.values[0]}`}`,
          statement: Sql.compileList(dialect, table, Access.all, query).page
        })
      }
    }
  }
  return all
}

/**
 * The first page of each shorthand filter with an index of its own for the default order (newest first),
 * compiled for a dialect, with that index: an adapter's test checks that its database reads the page from it.
 */
export const shorthandPages = (dialect: Sql.Dialect): ReadonlyArray<Page & { readonly index: string }> =>
  (
    [
      ["status", "failed", "builds_list_by_status"],
      ["trigger", "auto", "builds_list_by_trigger"],
      ["createdBy", "ada", "builds_list_by_creator"]
    ] as const
  ).map(([name, value, index]) => {
    const query: ListQuery<Fields.BuildField> = {
      orderBy: OrderBy.complete(OrderBy.defaultOrder),
      limit: 100,
      filter: Result.getOrThrow(Filter.fromJson(Fields.builds, { [name]: { eq: value } })),
      cursor: undefined
    }
    return { label: name, index, statement: Sql.compileList(dialect, Fields.builds, Access.all, query).page }
  })
