import { describe, expect, it } from "@effect/vitest"
import { Webhook } from "standardwebhooks"
import { generateSecret, secretPrefix, sign } from "../../src/internal/webhooks/sign.ts"

const id = "msg_01jd8x7k2m3n4p5q6r7s8t9v0w"
const body = JSON.stringify({ type: "build.finished", data: { id: "bld_1", outcome: "success" } })
const now = () => Math.floor(Date.now() / 1000)

const headers = (signature: string, timestamp: number, msgId = id) => ({
  "webhook-id": msgId,
  "webhook-timestamp": String(timestamp),
  "webhook-signature": signature
})

describe("sign", () => {
  it("generates whsec_ secrets of 32 random bytes", () => {
    const secrets = new Set(Array.from({ length: 50 }, generateSecret))
    expect(secrets.size).toBe(50)
    for (const secret of secrets) {
      expect(secret.startsWith(secretPrefix)).toBe(true)
      expect(Buffer.from(secret.slice(secretPrefix.length), "base64")).toHaveLength(32)
    }
  })

  it("signs as standardwebhooks does, and its verifier accepts the signature", () => {
    const secret = generateSecret()
    const timestamp = now()
    const signature = sign(secret, id, timestamp, body)
    expect(signature).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/)
    expect(signature).toBe(new Webhook(secret).sign(id, new Date(timestamp * 1000), body))
    expect(new Webhook(secret).verify(body, headers(signature, timestamp))).toEqual(JSON.parse(body))
  })

  it("signs with both secrets during a rotation: either verifies, a third does not", () => {
    const [old, current, other] = [generateSecret(), generateSecret(), generateSecret()]
    const timestamp = now()
    const signature = sign([old, current], id, timestamp, body)
    expect(signature.split(" ")).toHaveLength(2)
    expect(new Webhook(old).verify(body, headers(signature, timestamp))).toEqual(JSON.parse(body))
    expect(new Webhook(current).verify(body, headers(signature, timestamp))).toEqual(JSON.parse(body))
    expect(() => new Webhook(other).verify(body, headers(signature, timestamp))).toThrow(
      "No matching signature"
    )
  })

  it("is refused for a tampered body, id or timestamp", () => {
    const secret = generateSecret()
    const timestamp = now()
    const signature = sign(secret, id, timestamp, body)
    const verify = (b: string, h: Record<string, string>) => () => new Webhook(secret).verify(b, h)
    expect(verify(body.replace("success", "failure"), headers(signature, timestamp))).toThrow(
      "No matching signature"
    )
    expect(verify(body, headers(signature, timestamp, "msg_other"))).toThrow("No matching signature")
    expect(verify(body, headers(signature, timestamp - 1))).toThrow("No matching signature")
  })

  it("signs non-ASCII bodies over their UTF-8 bytes", () => {
    const secret = generateSecret()
    const timestamp = now()
    const text = JSON.stringify({ message: "café ✓ 🚀" })
    expect(new Webhook(secret).verify(text, headers(sign(secret, id, timestamp, text), timestamp))).toEqual(
      JSON.parse(text)
    )
  })
})
