/**
 * Secret values at rest: sealed with AES-256-GCM under a server key (`KILN_SECRETS_KEY`) before storage
 * sees them, opened only where a build runs. A sealed value names its format, so keys and algorithms can
 * change later; a value that was tampered with, or sealed under another key, does not open.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto"
import { Context, Layer } from "effect"

export interface SecretsKey {
  /** Undefined when no key is configured: secret values cannot be stored. */
  readonly key: Uint8Array | undefined
}

const derive = (secret: string | Uint8Array) => createHash("sha256").update(secret).digest()

/** The key; unless a layer sets it, derived from `KILN_SECRETS_KEY` in the environment. */
export const SecretsKey = Context.Reference<SecretsKey>("@kiln/core/Secrets/SecretsKey", {
  defaultValue: () => {
    const secret = process.env.KILN_SECRETS_KEY
    return { key: secret === undefined || secret === "" ? undefined : derive(secret) }
  }
})

/** Uses a key derived from this secret (at least 32 bytes of entropy); every process must share it. */
export const layer = (secret: string | Uint8Array): Layer.Layer<never> =>
  Layer.succeed(SecretsKey, { key: derive(secret) })

const prefix = "sealed:v1:"

export const isSealed = (value: string): boolean => value.startsWith(prefix)

export const seal = (key: Uint8Array, plaintext: string): string => {
  const iv = randomBytes(12)
  const cipher = createCipheriv("aes-256-gcm", key, iv)
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()])
  return `${prefix}${[iv, cipher.getAuthTag(), body].map((part) => part.toString("base64url")).join(".")}`
}

/** The plaintext, or `undefined` when the value is not sealed, was changed, or was sealed under another key. */
export const open = (key: Uint8Array, sealed: string): string | undefined => {
  if (!isSealed(sealed)) return undefined
  const [iv, tag, body] = sealed
    .slice(prefix.length)
    .split(".")
    .map((part) => Buffer.from(part, "base64url"))
  if (iv === undefined || tag === undefined || body === undefined || iv.length !== 12 || tag.length !== 16) {
    return undefined
  }
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv)
    decipher.setAuthTag(tag)
    return Buffer.concat([decipher.update(body), decipher.final()]).toString("utf8")
  } catch {
    return undefined
  }
}
