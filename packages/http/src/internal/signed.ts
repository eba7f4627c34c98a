/**
 * Short signed values the server hands out and takes back (log stream tickets, dashboard sessions): a JSON
 * payload in base64url, a dot, and its HMAC-SHA256 tag under a key derived from the server's cursor key
 * (`KILN_CURSOR_SECRET`) for that one purpose, so every process sharing the key accepts them and a value
 * made for one purpose never passes for another.
 */
import { createHmac, timingSafeEqual } from "node:crypto"
import { Cursor } from "@kiln/core"
import { Effect, Result } from "effect"

/** The cursor key, put to one use only. */
export const keyFor = (purpose: string) =>
  Effect.map(Effect.service(Cursor.CursorKey), (key) =>
    createHmac("sha256", key.secret).update(purpose).digest()
  )

export const tagOf = (key: Uint8Array, body: string) => createHmac("sha256", key).update(body).digest()

/** The payload as a signed value. */
export const sign = (key: Uint8Array, payload: object): string => {
  const body = Buffer.from(JSON.stringify(payload)).toString("base64url")
  return `${body}.${tagOf(key, body).toString("base64url")}`
}

/**
 * The payload of a value this key signed, unaltered; otherwise why not: `malformed` (too long, not two
 * parts) or `altered` (the tag does not match: changed, or signed with another deployment's key).
 */
export const verify = <Payload>(
  key: Uint8Array,
  value: string,
  maxLength: number
): Result.Result<Payload, "malformed" | "altered"> => {
  if (value.length > maxLength) return Result.fail("malformed")
  const [body, tag, ...rest] = value.split(".")
  if (body === undefined || tag === undefined || rest.length > 0) return Result.fail("malformed")
  // Compared as text: decoding would accept other spellings of the same bytes (base64's unused low bits).
  const given = Buffer.from(tag)
  const expected = Buffer.from(tagOf(key, body).toString("base64url"))
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return Result.fail("altered")
  // Signed by this key, so written by this server: its JSON parses.
  return Result.succeed(JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as Payload)
}
