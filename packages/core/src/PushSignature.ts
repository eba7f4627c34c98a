/**
 * Push events are signed, not authenticated with a token: each workspace has its own secret, derived from
 * one server key (`KILN_PUSH_SECRET`) so that nothing more has to be stored, and a sender signs the raw
 * request body with it: `X-Kiln-Signature: sha256=<hex HMAC-SHA256(secret, body)>`. Rotating the server
 * key rotates every workspace's secret.
 */
import { createHmac, timingSafeEqual } from "node:crypto"
import { Context, Layer } from "effect"
import type { WorkspaceId } from "./Id.ts"

export interface PushKey {
  /** Undefined when push events are not configured: the endpoint refuses them. */
  readonly secret: Uint8Array | undefined
}

/** The server key; unless a layer sets it, `KILN_PUSH_SECRET` from the environment. */
export const PushKey = Context.Reference<PushKey>("@kiln/core/PushSignature/PushKey", {
  defaultValue: () => {
    const secret = process.env.KILN_PUSH_SECRET
    return { secret: secret === undefined || secret === "" ? undefined : new TextEncoder().encode(secret) }
  }
})

/** Uses this server key (at least 32 bytes of entropy); every process receiving pushes must share it. */
export const layer = (secret: string | Uint8Array): Layer.Layer<never> =>
  Layer.succeed(PushKey, { secret: typeof secret === "string" ? new TextEncoder().encode(secret) : secret })

export const header = "x-kiln-signature"

/** A workspace's push secret, as the sender configures it. */
export const secretFor = (key: Uint8Array, workspaceId: WorkspaceId): string =>
  createHmac("sha256", key).update(`kiln push ${workspaceId}`).digest("hex")

/** The header value a sender computes over the raw body. */
export const sign = (secret: string, body: Uint8Array | string): string =>
  `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`

/** Whether `signature` is the body's signature with the workspace's secret, compared in constant time. */
export const verify = (
  key: Uint8Array,
  workspaceId: WorkspaceId,
  body: Uint8Array | string,
  signature: string | undefined
): boolean => {
  if (signature === undefined) return false
  const expected = Buffer.from(sign(secretFor(key, workspaceId), body))
  const given = Buffer.from(signature)
  return given.length === expected.length && timingSafeEqual(given, expected)
}
