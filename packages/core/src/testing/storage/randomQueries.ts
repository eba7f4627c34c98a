/** Random filters and orders over a dataset's own values, so that most of them select something. */
import { DateTime } from "effect"
import fc from "fast-check"
import * as Fields from "../../Fields.ts"
import * as OrderBy from "../../OrderBy.ts"
import type { RowsOf } from "./datasets.ts"

const iso = (millis: number) => DateTime.formatIso(DateTime.makeUnsafe(millis))

/** A value for a field: mostly one the dataset holds, so filters select something. */
const valueFor = <Row>(field: Fields.Field<Row>, rows: ReadonlyArray<Row>) => {
  const seen = rows.map((row) => field.get(row)).filter((v) => v !== null)
  const raw = fc.oneof(
    {
      weight: 4,
      arbitrary:
        seen.length > 0
          ? fc.constantFrom(...seen)
          : fc.constant(field.type === "enum" ? field.values[0]! : field.type === "string" ? "x" : 0)
    },
    {
      weight: 1,
      arbitrary:
        field.type === "enum"
          ? fc.constantFrom(...field.values)
          : field.type === "string"
            ? fc.constantFrom("a", "b", "z", "%", "_", "*", "[", "bot:", "😀", "")
            : fc.integer({ min: 0, max: 2_000_000_000_000 })
    }
  )
  return raw.map((value) => (field.type === "timestamp" && typeof value === "number" ? iso(value) : value))
}

const substringOf = (value: unknown) =>
  typeof value === "string" && value.length > 0
    ? fc
        .tuple(fc.nat(value.length), fc.nat(value.length))
        .map(([a, b]) => value.slice(Math.min(a, b), Math.max(a, b)))
    : fc.constant(String(value))

const predicateFor = <Row>(table: Fields.Table<Row>, rows: ReadonlyArray<Row>): fc.Arbitrary<object> => {
  const filterable = Object.entries(table.fields).filter(([, field]) => field.filter)
  return fc.constantFrom(...filterable).chain(([name, field]) => {
    const value = valueFor(field, rows)
    const ops: Array<fc.Arbitrary<object>> = [
      value.map((v) => ({ eq: v })),
      value.map((v) => ({ neq: v })),
      fc.array(value, { maxLength: 4 }).map((vs) => ({ in: vs })),
      fc.array(value, { maxLength: 4 }).map((vs) => ({ notIn: vs }))
    ]
    if (field.type !== "enum") {
      ops.push(fc.boolean().map((isNull) => ({ isNull })))
      ops.push(fc.tuple(fc.constantFrom("lt", "lte", "gt", "gte"), value).map(([op, v]) => ({ [op]: v })))
    } else if (field.nullable) ops.push(fc.boolean().map((isNull) => ({ isNull })))
    if (field.type === "string") {
      ops.push(
        fc
          .tuple(fc.constantFrom("contains", "startsWith", "endsWith"), value.chain(substringOf))
          .map(([op, v]) => ({ [op]: v }))
      )
    }
    return fc.oneof(...ops).map((operators) => ({ [name]: operators }))
  })
}

export const filterFor = <E extends Fields.Entity>(
  entity: E,
  rowsOf: RowsOf,
  depth: number
): fc.Arbitrary<object> => {
  const table: Fields.Table<Fields.Rows[E]> = Fields.tables[entity]
  const leaf = predicateFor(table, rowsOf(entity))
  if (depth <= 0) return leaf
  const inner = () => filterFor(entity, rowsOf, depth - 1)
  const relations = Object.entries(table.relations).map(([name, relation]) => {
    const nested = filterFor(relation.entity, rowsOf, depth - 1)
    return relation.kind === "one"
      ? nested.map((f) => ({ [name]: f }))
      : fc.tuple(fc.constantFrom("some", "every", "none"), nested).map(([q, f]) => ({ [name]: { [q]: f } }))
  })
  return fc.oneof(
    { weight: 4, arbitrary: leaf },
    { weight: 1, arbitrary: fc.array(inner(), { maxLength: 3 }).map((filters) => ({ and: filters })) },
    { weight: 1, arbitrary: fc.array(inner(), { maxLength: 3 }).map((filters) => ({ or: filters })) },
    { weight: 1, arbitrary: inner().map((filter) => ({ not: filter })) },
    { weight: 1, arbitrary: fc.tuple(leaf, inner()).map(([a, b]) => ({ ...a, ...b })) },
    ...relations.map((arbitrary) => ({ weight: 1, arbitrary }))
  )
}

export const orderByFor = (table: Fields.Table) => {
  const sortable = Object.keys(table.fields).filter((name) => table.fields[name]!.sort && name !== "id")
  return fc
    .uniqueArray(fc.constantFrom(...sortable), { minLength: 1, maxLength: OrderBy.maxKeys })
    .chain((names) =>
      fc.tuple(...names.map((name) => fc.constantFrom(...OrderBy.directions).map((d) => ({ [name]: d }))))
    )
}
