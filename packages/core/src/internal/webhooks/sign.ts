/**
 * Signatures as the Standard Webhooks specification defines them, so that any of its libraries can
 * verify a delivery: `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`, where
 * the key is the secret `whsec_<base64>` decoded. During a rotation the header carries one signature per
 * secret, space-separated, and a receiver holding either secret accepts the delivery.
 */
import { createHmac, randomBytes } from "node:crypto"

export const secretPrefix = "whsec_"

/** A new secret: 32 random bytes (the specification asks for 24 to 64). */
export const generateSecret = (): string => `${secretPrefix}${randomBytes(32).toString("base64")}`

/** The `webhook-signature` header value for one message, signed with each secret in turn. */
export const sign = (
  secrets: string | ReadonlyArray<string>,
  msgId: string,
  timestampSeconds: number,
  body: string
): string =>
  (typeof secrets === "string" ? [secrets] : secrets)
    .map((secret) => {
      const key = Buffer.from(
        secret.startsWith(secretPrefix) ? secret.slice(secretPrefix.length) : secret,
        "base64"
      )
      return `v1,${createHmac("sha256", key).update(`${msgId}.${timestampSeconds}.${body}`).digest("base64")}`
    })
    .join(" ")
