/**
 * Page cursors (DESIGN.md §5): opaque base64url of the boundary row's sort values, bound to the entity,
 * the order and the caller's scope, with an HMAC-SHA256 tag checked in constant time. A cursor that was
 * tampered with, cut short, signed with another key, or used with another order or scope is an
 * `InvalidCursor`, never a query. Its values are still bound as parameters.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import { Config, Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import type { Access } from "./Access.ts"
import { hasField, type Scalar, type Table } from "./Fields.ts"
import { type SortKey, signature } from "./OrderBy.ts"

export class InvalidCursor extends Schema.TaggedError<InvalidCursor>()("InvalidCursor", {
  message: Schema.String
}) {}

export interface CursorKey {
  readonly secret: Uint8Array
  /** False for the random key a process makes when none is configured; cursors then die with it. */
  readonly configured: boolean
}

/**
 * The signing key. Unless a layer sets it, `KILN_CURSOR_SECRET` from the environment, so every host gets
 * it without wiring; without either, each process makes a random one and warns when it first signs.
 */
export const CursorKey = Context.Reference<CursorKey>("@kiln/core/Cursor/CursorKey", {
  defaultValue: () => {
    const secret = process.env.KILN_CURSOR_SECRET
    return secret === undefined || secret === ""
      ? { secret: randomBytes(32), configured: false }
      : { secret: new TextEncoder().encode(secret), configured: true }
  }
})

/** Uses this secret (at least 32 bytes of entropy) for every cursor; processes sharing one must share it. */
export const layer = (secret: string | Uint8Array): Layer.Layer<never> =>
  Layer.succeed(CursorKey, {
    secret: typeof secret === "string" ? new TextEncoder().encode(secret) : secret,
    configured: true
  })

/** Reads `KILN_CURSOR_SECRET`; without it, a random key for this process and a warning saying what that costs. */
export const layerConfig: Layer.Layer<never, Config.ConfigError> = Layer.unwrap(
  Effect.gen(function* () {
    const secret = yield* Config.option(Config.Redacted("KILN_CURSOR_SECRET"))
    if (Option.isSome(secret)) return layer(Redacted.value(secret.value))
    yield* warnUnconfigured
    return Layer.succeed(CursorKey, { secret: randomBytes(32), configured: false })
  })
)

let warned = false
const warnUnconfigured = Effect.suspend(() => {
  if (warned) return Effect.void
  warned = true
  return Effect.logWarning(
    "KILN_CURSOR_SECRET is not set: page cursors are signed with a random key for this process; they stop working when it restarts, and processes do not accept each other's"
  )
})

export type Direction = "after" | "before"

/** A decoded cursor: where a page starts, and which way it reads. */
export interface Position {
  readonly direction: Direction
  readonly values: ReadonlyArray<Scalar>
}

const scopeTag = (access: Access): string =>
  createHash("sha256")
    .update(access._tag === "All" ? "*" : [...access.ids].sort().join(","))
    .digest("base64url")
    .slice(0, 16)

interface Payload {
  readonly e: string
  readonly o: string
  readonly s: string
  readonly v: ReadonlyArray<Scalar>
}

/** One answer for a forged cursor and another caller's: which of the two it is says something about theirs. */
const notIssuedHere = "the cursor was altered, or issued to another caller or by another deployment"

const tagOf = (secret: Uint8Array, body: string): Buffer => createHmac("sha256", secret).update(body).digest()

/** The cursor of a row: its values for each sort key. */
export const encode = (
  table: Table,
  orderBy: ReadonlyArray<SortKey>,
  access: Access,
  values: ReadonlyArray<Scalar>
): Effect.Effect<string> =>
  Effect.gen(function* () {
    const key = yield* CursorKey
    if (!key.configured) yield* warnUnconfigured
    const payload: Payload = { e: table.entity, o: signature(orderBy), s: scopeTag(access), v: values }
    const body = Buffer.from(JSON.stringify(payload)).toString("base64url")
    return `${body}.${tagOf(key.secret, body).toString("base64url")}`
  })

const matchesField = <Name extends string>(
  table: Table<never, Name>,
  key: SortKey<Name>,
  value: unknown
): boolean => {
  if (!hasField(table, key.field)) return false
  const field = table.fields[key.field]
  if (value === null) return field.nullable
  switch (field.type) {
    case "number":
    case "timestamp":
      return typeof value === "number" && Number.isFinite(value)
    case "boolean":
      return typeof value === "boolean"
    default:
      return typeof value === "string"
  }
}

/** Checks a cursor's tag and binding, and answers the position it names. */
export const decode = <Name extends string>(
  table: Table<never, Name>,
  orderBy: ReadonlyArray<SortKey<Name>>,
  access: Access,
  direction: Direction,
  text: string
): Effect.Effect<Position, InvalidCursor> =>
  Effect.gen(function* () {
    const invalid = (why: string) => new InvalidCursor({ message: `${direction}: ${why}` })
    const key = yield* CursorKey
    const [body, tag, ...rest] = text.split(".")
    if (body === undefined || tag === undefined || rest.length > 0 || text.length > 4096) {
      return yield* invalid("not a cursor this API issued")
    }
    const expected = tagOf(key.secret, body)
    const given = Buffer.from(tag, "base64url")
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return yield* invalid(notIssuedHere)
    }
    let payload: Payload
    try {
      payload = JSON.parse(Buffer.from(body, "base64url").toString("utf8"))
    } catch {
      return yield* invalid("not a cursor this API issued")
    }
    if (payload.e !== table.entity)
      return yield* invalid(`the cursor is for ${payload.e}, not ${table.entity}`)
    if (payload.o !== signature(orderBy)) return yield* invalid("the cursor was issued for another orderBy")
    if (payload.s !== scopeTag(access)) return yield* invalid(notIssuedHere)
    if (
      !Array.isArray(payload.v) ||
      payload.v.length !== orderBy.length ||
      !orderBy.every((sortKey, i) => matchesField(table, sortKey, payload.v[i]))
    ) {
      return yield* invalid("not a cursor this API issued")
    }
    return { direction, values: payload.v }
  })
