/**
 * Prefixed, K-sortable ids in the TypeID format (`bld_01jd…`): a prefix, an underscore and the 128 bits
 * of a UUIDv7 in 26 Crockford base32 characters. The UUID form is what the UUID-speaking dialects show,
 * so `toUuid`/`fromUuid` convert losslessly.
 *
 * A small module rather than `typeid-js`: we need ~80 lines of encoding, a monotonic generator that
 * reads Effect's `Clock`, and branded schemas; the dependency would give us only the first.
 */
import { Clock, Context, Effect, Schema } from "effect"

export const prefixes = {
  workspace: "wsp",
  app: "app",
  appVersion: "ver",
  build: "bld",
  trigger: "trg",
  sourceEvent: "evt",
  token: "tok",
  event: "msg",
  webhook: "whk",
  delivery: "dlv"
} as const

export type Prefix = (typeof prefixes)[keyof typeof prefixes]

const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
const suffixPattern = "[0-7][0-9a-hjkmnp-tv-z]{25}"
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const idSchema = (prefix: Prefix) =>
  Schema.String.check(
    Schema.isPattern(new RegExp(`^${prefix}_${suffixPattern}$`), {
      expected: `an id of the form ${prefix}_<26 base32 characters>`
    })
  )

export const WorkspaceId = idSchema("wsp").pipe(Schema.brand("WorkspaceId"))
export type WorkspaceId = typeof WorkspaceId.Type
export const AppId = idSchema("app").pipe(Schema.brand("AppId"))
export type AppId = typeof AppId.Type
export const AppVersionId = idSchema("ver").pipe(Schema.brand("AppVersionId"))
export type AppVersionId = typeof AppVersionId.Type
export const BuildId = idSchema("bld").pipe(Schema.brand("BuildId"))
export type BuildId = typeof BuildId.Type
export const TriggerId = idSchema("trg").pipe(Schema.brand("TriggerId"))
export type TriggerId = typeof TriggerId.Type
export const SourceEventId = idSchema("evt").pipe(Schema.brand("SourceEventId"))
export type SourceEventId = typeof SourceEventId.Type
export const TokenId = idSchema("tok").pipe(Schema.brand("TokenId"))
export type TokenId = typeof TokenId.Type
/** `msg_`, as Standard Webhooks names a message: an event's id is the `webhook-id` of every delivery of it. */
export const EventId = idSchema("msg").pipe(Schema.brand("EventId"))
export type EventId = typeof EventId.Type
export const WebhookId = idSchema("whk").pipe(Schema.brand("WebhookId"))
export type WebhookId = typeof WebhookId.Type
export const DeliveryId = idSchema("dlv").pipe(Schema.brand("DeliveryId"))
export type DeliveryId = typeof DeliveryId.Type

/** The schema of each kind of id, by its prefix: what an API decodes an id it is sent with. */
export const schemas: { readonly [P in Prefix]: Schema.Codec<IdTypes[P], string> } = {
  wsp: WorkspaceId,
  app: AppId,
  ver: AppVersionId,
  bld: BuildId,
  trg: TriggerId,
  evt: SourceEventId,
  tok: TokenId,
  msg: EventId,
  whk: WebhookId,
  dlv: DeliveryId
}

export interface IdTypes {
  readonly wsp: WorkspaceId
  readonly app: AppId
  readonly ver: AppVersionId
  readonly bld: BuildId
  readonly trg: TriggerId
  readonly evt: SourceEventId
  readonly tok: TokenId
  readonly msg: EventId
  readonly whk: WebhookId
  readonly dlv: DeliveryId
}

const encode = (prefix: string, value: bigint): string => {
  let suffix = ""
  for (let i = 25; i >= 0; i--) suffix += alphabet[Number((value >> BigInt(i * 5)) & 31n)]
  return `${prefix}_${suffix}`
}

const decodeSuffix = (suffix: string): bigint => {
  let value = 0n
  for (const char of suffix) value = (value << 5n) | BigInt(alphabet.indexOf(char))
  return value
}

const splitId = (id: string): { readonly prefix: string; readonly suffix: string } => {
  const at = id.lastIndexOf("_")
  return { prefix: id.slice(0, at), suffix: id.slice(at + 1) }
}

/** The UUID (v7) an id encodes, in the canonical 8-4-4-4-12 form. */
export const toUuid = (id: string): string => {
  const hex = decodeSuffix(splitId(id).suffix).toString(16).padStart(32, "0")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/**
 * The id for a UUID under a prefix, or `undefined` when the text is not a UUID. Callers validate the
 * result against the entity's schema, which also rejects ids of another entity.
 */
export const fromUuid = <P extends Prefix>(prefix: P, uuid: string): IdTypes[P] | undefined =>
  uuidPattern.test(uuid) ? (encode(prefix, BigInt(`0x${uuid.replaceAll("-", "")}`)) as IdTypes[P]) : undefined

/** Milliseconds since the epoch at which the id was generated (the UUIDv7 timestamp). */
export const timestampOf = (id: string): number => Number(decodeSuffix(splitId(id).suffix) >> 80n)

/**
 * Generates UUIDv7 values, monotonic within one generator: ids minted in the same millisecond (or after
 * the clock stepped back) increment the random part, so ordering by id follows creation order in a
 * process. Random bits come from the platform CSPRNG so processes sharing a database never collide.
 */
export interface Generator {
  readonly next: (epochMillis: number) => bigint
}

const randomBits74 = (): bigint => {
  const bytes = crypto.getRandomValues(new Uint8Array(10))
  let value = 0n
  for (const byte of bytes) value = (value << 8n) | BigInt(byte)
  return value & ((1n << 74n) - 1n)
}

export const makeGenerator = (random: () => bigint = randomBits74): Generator => {
  let lastMillis = -1
  let lastRandom = 0n
  return {
    next: (epochMillis) => {
      if (epochMillis > lastMillis) {
        lastMillis = epochMillis
        lastRandom = random()
      } else {
        lastRandom += 1n
        if (lastRandom >> 74n !== 0n) {
          lastMillis += 1
          lastRandom = random()
        }
      }
      const randA = lastRandom >> 62n
      const randB = lastRandom & ((1n << 62n) - 1n)
      return (BigInt(lastMillis) << 80n) | (7n << 76n) | (randA << 64n) | (2n << 62n) | randB
    }
  }
}

/** The id generator in use; replace it in tests that need a deterministic sequence. */
export const IdGenerator = Context.Reference<Generator>("@kiln/core/Id/IdGenerator", {
  defaultValue: () => makeGenerator()
})

/** A fresh id with the given prefix, timestamped by Effect's `Clock`. */
export const generate = <P extends Prefix>(prefix: P): Effect.Effect<IdTypes[P]> =>
  Effect.gen(function* () {
    const generator = yield* IdGenerator
    const now = yield* Clock.currentTimeMillis
    return encode(prefix, generator.next(now)) as IdTypes[P]
  })

/**
 * A source of fresh ids with the given prefix for code that cannot run an Effect per id (a write that
 * derives several events at once): every id is stamped with the clock as read here.
 */
export const generator = <P extends Prefix>(prefix: P): Effect.Effect<() => IdTypes[P]> =>
  Effect.gen(function* () {
    const ids = yield* IdGenerator
    const now = yield* Clock.currentTimeMillis
    return () => encode(prefix, ids.next(now)) as IdTypes[P]
  })
