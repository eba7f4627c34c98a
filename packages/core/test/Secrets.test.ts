import { describe, expect, it } from "@effect/vitest"
import { Secrets } from "@kiln/core"
import fc from "fast-check"

const key = new Uint8Array(32).fill(1)
const other = new Uint8Array(32).fill(2)

describe("Secrets", () => {
  it("opens what it sealed, for any text, and seals the same text differently each time", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 200 }), (text) => {
        const sealed = Secrets.seal(key, text)
        expect(Secrets.isSealed(sealed)).toBe(true)
        expect(Secrets.open(key, sealed)).toBe(text)
        // Short texts turn up in any base64 by chance; a longer one would mean it was not encrypted.
        if (text.length >= 8) expect(sealed).not.toContain(text)
        expect(Secrets.seal(key, text)).not.toBe(sealed)
      }),
      { numRuns: 300 }
    )
  })

  it("opens nothing sealed under another key, changed in any character, or not sealed at all", () => {
    const sealed = Secrets.seal(key, "s3cret")
    expect(Secrets.open(other, sealed)).toBeUndefined()
    expect(Secrets.open(key, "s3cret")).toBeUndefined()
    expect(Secrets.open(key, "sealed:v1:")).toBeUndefined()
    for (let i = "sealed:v1:".length; i < sealed.length; i++) {
      // A segment's last base64 character may carry bits that decode to nothing: changing it changes nothing.
      if (i === sealed.length - 1 || sealed[i + 1] === ".") continue
      const flipped = sealed.slice(0, i) + (sealed[i] === "A" ? "B" : "A") + sealed.slice(i + 1)
      if (flipped !== sealed) expect(Secrets.open(key, flipped), `changed at ${i}`).toBeUndefined()
    }
  })
})
