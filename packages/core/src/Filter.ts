/**
 * The filter language (DESIGN.md §4): JSON as it arrives on a query string, parsed against an entity's
 * field table into a normalized AST. Keys of one object are ANDed; `and`/`or`/`not` nest; relations
 * traverse to-one (`app`) and to-many (`steps: { some | every | none }`).
 *
 * Every predicate is two-valued: a comparison never matches a null field, `neq` and `notIn` do match it,
 * and `not` is plain negation. The SQL compiler and the in-memory evaluator both implement exactly this.
 *
 * Nothing a client sends reaches SQL text: field names are looked up in the closed table, and values are
 * decoded by Schema into the field's type, to be bound as parameters.
 */
import { DateTime, Option, Result, Schema, SchemaIssue } from "effect"
import { type Field, hasField, relationOf, type Scalar, type Table, tables } from "./Fields.ts"

export type CompareOp = "eq" | "neq" | "lt" | "lte" | "gt" | "gte" | "contains" | "startsWith" | "endsWith"

/**
 * A filter over a table whose fields are `Name`s. A relation's filter is over the related table, whose
 * names only the relation knows: `Filter` alone names any field.
 */
export type Filter<Name extends string = string> =
  | { readonly _tag: "And"; readonly filters: ReadonlyArray<Filter<Name>> }
  | { readonly _tag: "Or"; readonly filters: ReadonlyArray<Filter<Name>> }
  | { readonly _tag: "Not"; readonly filter: Filter<Name> }
  | {
      readonly _tag: "Compare"
      readonly field: Name
      readonly op: CompareOp
      readonly value: Exclude<Scalar, null>
    }
  | {
      readonly _tag: "In"
      readonly field: Name
      readonly values: ReadonlyArray<Exclude<Scalar, null>>
      readonly negate: boolean
    }
  | { readonly _tag: "IsNull"; readonly field: Name; readonly isNull: boolean }
  | {
      readonly _tag: "Related"
      readonly relation: string
      readonly quantifier: "one" | "some" | "every" | "none"
      readonly filter: Filter
    }

export const and = <Name extends string>(filters: ReadonlyArray<Filter<Name>>): Filter<Name> =>
  filters.length === 1 ? filters[0]! : { _tag: "And", filters }

/** The caps of DESIGN.md §4; each is a clear rejection, never a slow query. */
export const limits = {
  jsonBytes: 8 * 1024,
  depth: 6,
  predicates: 64,
  inValues: 100,
  stringBytes: 1024
} as const

/** A query parameter the client got wrong; the message names the JSON path (`filter.or[1].status.in[0]: …`). */
export class InvalidQuery extends Schema.TaggedError<InvalidQuery>()("InvalidQuery", {
  parameter: Schema.String,
  message: Schema.String
}) {}

// ---------------------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------------------

const identifier = /^[A-Za-z_$][A-Za-z0-9_$]*$/

/** A JSON path in the style of the error messages; odd keys are quoted and cut short. */
export const pathOf = (root: string, segments: ReadonlyArray<PropertyKey>): string =>
  segments.reduce<string>((path, segment) => {
    if (typeof segment === "number") return `${path}[${segment}]`
    const key = String(segment)
    return identifier.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key.slice(0, 64))}]`
  }, root)

// ---------------------------------------------------------------------------------------------------------
// Value schemas, by field type
// ---------------------------------------------------------------------------------------------------------

const encoder = new TextEncoder()

/** A string a client may send: well-formed Unicode, no NUL, at most 1 KiB of UTF-8. */
export const QueryString = Schema.String.check(
  Schema.makeFilter(
    (s: string) =>
      s.isWellFormed() &&
      !s.includes("\u0000") &&
      (s.length <= limits.stringBytes / 4 || encoder.encode(s).length <= limits.stringBytes),
    { expected: "a string of at most 1 KiB, without NUL or unpaired surrogates" }
  )
)

const FiniteNumber = Schema.Finite.annotate({ expected: "a finite number" })

const isoTimestamp =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/

/** Epoch milliseconds of an ISO 8601 timestamp, or `undefined` — also for dates that do not exist. */
const timestampMillis = (text: string): number | undefined => {
  const parts = isoTimestamp.exec(text)
  if (parts === null) return undefined
  const [year, month, day, hour, minute, second] = parts.slice(1, 7).map((part) => Number(part ?? 0))
  const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate()
  if (
    month! < 1 ||
    month! > 12 ||
    day! < 1 ||
    day! > daysInMonth ||
    hour! > 23 ||
    minute! > 59 ||
    second! > 59
  ) {
    return undefined
  }
  return Option.getOrUndefined(Option.map(DateTime.make(text), DateTime.toEpochMillis))
}

const Timestamp = Schema.String.check(
  Schema.makeFilter((text: string) => timestampMillis(text) !== undefined, {
    expected: "an ISO 8601 timestamp such as 2026-01-31T12:00:00Z"
  })
)

const valueSchema = (field: Field): Schema.Decoder<Exclude<Scalar, null>> => {
  switch (field.type) {
    case "string":
      return QueryString
    case "number":
      return FiniteNumber
    case "timestamp":
      return Timestamp
    case "boolean":
      return Schema.Boolean
    case "enum":
      return Schema.Literals(field.values).annotate({ expected: `one of ${field.values.join(", ")}` })
  }
}

type Operator = CompareOp | "in" | "notIn" | "isNull"

const operatorsOf = (field: Field): ReadonlyArray<Operator> => {
  switch (field.type) {
    case "string":
      return [
        "eq",
        "neq",
        "in",
        "notIn",
        "lt",
        "lte",
        "gt",
        "gte",
        "contains",
        "startsWith",
        "endsWith",
        "isNull"
      ]
    case "number":
    case "timestamp":
      return ["eq", "neq", "in", "notIn", "lt", "lte", "gt", "gte", "isNull"]
    case "enum":
      return field.nullable ? ["eq", "neq", "in", "notIn", "isNull"] : ["eq", "neq", "in", "notIn"]
    case "boolean":
      return ["eq"]
  }
}

const isOperatorOf = (field: Field, key: string): key is Operator =>
  operatorsOf(field).some((op) => op === key)

const operatorSchemas = new WeakMap<Field, Schema.Decoder<Readonly<Record<string, unknown>>>>()

/** The schema of a field's operator object: `{ "eq": …, "in": [ … ], … }`, each operator optional. */
const operatorSchema = (field: Field) => {
  const cached = operatorSchemas.get(field)
  if (cached !== undefined) return cached
  const value = valueSchema(field)
  const fields: Record<string, Schema.Decoder<unknown>> = {}
  for (const op of operatorsOf(field)) {
    fields[op] = Schema.optionalKey(
      op === "in" || op === "notIn"
        ? Schema.Array(value).check(Schema.isMaxLength(limits.inValues))
        : op === "isNull"
          ? Schema.Boolean
          : value
    )
  }
  const schema = Schema.Struct(fields)
  operatorSchemas.set(field, schema)
  return schema
}

// ---------------------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------------------

/** Thrown inside the parser only, and caught at its boundary: a parse either succeeds or names one problem. */
class Rejection {
  readonly message: string
  constructor(message: string) {
    this.message = message
  }
}

const isPlainObject = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Nesting of the raw JSON, measured without recursion so no input can exhaust the stack. */
const jsonDepth = (root: unknown): number => {
  let deepest = 0
  const stack: Array<readonly [unknown, number]> = [[root, 1]]
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!
    if (typeof value !== "object" || value === null) continue
    deepest = Math.max(deepest, depth)
    for (const child of Object.values(value)) stack.push([child, depth + 1])
  }
  return deepest
}

interface Walk {
  predicates: number
}

const describeOperators = (field: Field) => operatorsOf(field).join(", ")
const filterableFields = (table: Table) =>
  [
    ...Object.keys(table.fields).filter((name) => table.fields[name]!.filter),
    ...Object.keys(table.relations)
  ].join(", ")

const leaf = <Name extends string>(
  field: Field,
  name: Name,
  input: unknown,
  path: string,
  walk: Walk
): ReadonlyArray<Filter<Name>> => {
  if (!isPlainObject(input)) {
    throw new Rejection(`${path}: expected an object of operators (${describeOperators(field)})`)
  }
  for (const key of Object.keys(input)) {
    if (!isOperatorOf(field, key)) {
      throw new Rejection(
        `${pathOf(path, [key])}: not an operator of ${field.type} fields; use one of ${describeOperators(field)}`
      )
    }
  }
  const decoded = Schema.decodeUnknownResult(operatorSchema(field))(input, { onExcessProperty: "error" })
  if (Result.isFailure(decoded)) {
    const [issue] = SchemaIssue.makeFormatterStandardSchemaV1()(decoded.failure.issue).issues
    const message = (issue?.message ?? "invalid value").replace(/^Expected /, "expected ")
    throw new Rejection(`${pathOf(path, (issue?.path ?? []) as ReadonlyArray<PropertyKey>)}: ${message}`)
  }
  // Timestamps are compared as epoch milliseconds everywhere.
  const normalize = (value: unknown) =>
    (field.type === "timestamp" ? timestampMillis(value as string) : value) as Exclude<Scalar, null>
  const predicates: Array<Filter<Name>> = []
  for (const [op, raw] of Object.entries(decoded.success)) {
    const value = Array.isArray(raw) ? raw.map(normalize) : op === "isNull" ? raw : normalize(raw)
    walk.predicates += 1
    if (op === "in" || op === "notIn") {
      predicates.push({
        _tag: "In",
        field: name,
        values: value as ReadonlyArray<Exclude<Scalar, null>>,
        negate: op === "notIn"
      })
    } else if (op === "isNull") {
      predicates.push({ _tag: "IsNull", field: name, isNull: value as boolean })
    } else {
      predicates.push({
        _tag: "Compare",
        field: name,
        op: op as CompareOp,
        value: value as Exclude<Scalar, null>
      })
    }
  }
  if (predicates.length === 0)
    throw new Rejection(`${path}: expected at least one operator (${describeOperators(field)})`)
  return predicates
}

const node = <Name extends string>(
  table: Table<never, Name>,
  input: unknown,
  path: string,
  depth: number,
  walk: Walk
): Filter<Name> => {
  if (depth > limits.depth) throw new Rejection(`${path}: nested deeper than ${limits.depth} levels`)
  if (!isPlainObject(input)) throw new Rejection(`${path}: expected a filter object`)
  const parts: Array<Filter<Name>> = []
  for (const [key, value] of Object.entries(input)) {
    const at = pathOf(path, [key])
    if (key === "and" || key === "or") {
      if (!Array.isArray(value)) throw new Rejection(`${at}: expected an array of filters`)
      const filters = value.map((item, i) => node(table, item, `${at}[${i}]`, depth + 1, walk))
      parts.push({ _tag: key === "and" ? "And" : "Or", filters })
    } else if (key === "not") {
      parts.push({ _tag: "Not", filter: node(table, value, at, depth + 1, walk) })
    } else if (relationOf(table, key) !== undefined) {
      const relation = relationOf(table, key)!
      const target: Table = tables[relation.entity]
      if (relation.kind === "one") {
        parts.push({
          _tag: "Related",
          relation: key,
          quantifier: "one",
          filter: node(target, value, at, depth + 1, walk)
        })
      } else {
        if (!isPlainObject(value) || Object.keys(value).length === 0) {
          throw new Rejection(`${at}: expected an object with some, every or none`)
        }
        for (const [quantifier, inner] of Object.entries(value)) {
          if (quantifier !== "some" && quantifier !== "every" && quantifier !== "none") {
            throw new Rejection(`${pathOf(at, [quantifier])}: expected some, every or none`)
          }
          parts.push({
            _tag: "Related",
            relation: key,
            quantifier,
            filter: node(target, inner, pathOf(at, [quantifier]), depth + 1, walk)
          })
        }
      }
    } else {
      if (!hasField(table, key) || !table.fields[key].filter) {
        throw new Rejection(
          `${at}: not a filterable field of ${table.entity}; use one of ${filterableFields(table)}`
        )
      }
      parts.push(...leaf(table.fields[key], key, value, at, walk))
    }
    if (walk.predicates > limits.predicates) {
      throw new Rejection(`${path}: more than ${limits.predicates} predicates`)
    }
  }
  return and(parts)
}

/** Parses a filter already decoded from JSON. */
export const fromJson = <Name extends string>(
  table: Table<never, Name>,
  input: unknown,
  parameter = "filter"
): Result.Result<Filter<Name>, InvalidQuery> => {
  // Bounds the recursion below, whatever the input: a legal filter is far shallower than this.
  if (jsonDepth(input) > limits.depth * 4 + 4) {
    return Result.fail(
      new InvalidQuery({ parameter, message: `${parameter}: nested deeper than ${limits.depth} levels` })
    )
  }
  try {
    return Result.succeed(node(table, input, parameter, 1, { predicates: 0 }))
  } catch (error) {
    if (error instanceof Rejection)
      return Result.fail(new InvalidQuery({ parameter, message: error.message }))
    throw error
  }
}

/** Parses a filter as it arrives on a query string: JSON text of at most 8 KiB. */
export const parse = <Name extends string>(
  table: Table<never, Name>,
  text: string,
  parameter = "filter"
): Result.Result<Filter<Name>, InvalidQuery> => {
  if (text.length > limits.jsonBytes || encoder.encode(text).length > limits.jsonBytes) {
    return Result.fail(
      new InvalidQuery({ parameter, message: `${parameter}: longer than ${limits.jsonBytes / 1024} KiB` })
    )
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return Result.fail(new InvalidQuery({ parameter, message: `${parameter}: not valid JSON` }))
  }
  return fromJson(table, json, parameter)
}
