import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as AddressPolicy from "../../src/internal/webhooks/addressPolicy.ts"
import * as WebhookUrl from "../../src/internal/webhooks/webhookUrl.ts"

const { strict } = AddressPolicy
const policy = (options: AddressPolicy.Options) => Result.getOrThrow(AddressPolicy.make(options))

/** Every address form refused by default, with the rule that must refuse it. */
const forbidden: ReadonlyArray<readonly [string, AddressPolicy.Rule]> = [
  ["127.0.0.1", "loopback"],
  ["127.255.255.254", "loopback"],
  ["0.0.0.0", "unspecified"],
  ["0.1.2.3", "unspecified"],
  ["10.0.0.1", "private"],
  ["172.16.0.1", "private"],
  ["172.31.255.255", "private"],
  ["192.168.1.1", "private"],
  ["100.64.0.1", "shared"],
  ["100.127.255.254", "shared"],
  ["169.254.1.1", "link-local"],
  ["169.254.169.254", "metadata"],
  ["169.254.170.2", "metadata"],
  ["100.100.100.200", "metadata"],
  ["168.63.129.16", "metadata"],
  ["224.0.0.1", "multicast"],
  ["239.255.255.250", "multicast"],
  ["255.255.255.255", "broadcast"],
  ["240.0.0.1", "reserved"],
  ["192.0.0.8", "reserved"],
  ["198.18.0.1", "reserved"],
  ["192.0.2.1", "documentation"],
  ["198.51.100.1", "documentation"],
  ["203.0.113.1", "documentation"],
  ["::1", "loopback"],
  ["0:0:0:0:0:0:0:1", "loopback"],
  ["::", "unspecified"],
  ["fc00::1", "private"],
  ["fd12:3456::1", "private"],
  ["fec0::1", "private"],
  ["64:ff9b:1::1", "private"],
  ["fe80::1", "link-local"],
  ["fe80::1%eth0", "link-local"],
  ["fd00:ec2::254", "metadata"],
  ["ff02::1", "multicast"],
  ["2001:db8::1", "documentation"],
  ["3fff::1", "documentation"],
  ["100::1", "reserved"],
  ["2001::1", "reserved"],
  ["4000::1", "reserved"],
  // IPv4 inside IPv6, judged by the IPv4 address.
  ["::ffff:127.0.0.1", "loopback"],
  ["::ffff:7f00:1", "loopback"],
  ["::FFFF:10.0.0.1", "private"],
  ["0:0:0:0:0:ffff:169.254.169.254", "metadata"],
  ["::ffff:0:127.0.0.1", "loopback"],
  ["::127.0.0.1", "loopback"],
  ["::7f00:1", "loopback"],
  ["::a9fe:a9fe", "metadata"],
  ["::0.0.0.2", "unspecified"],
  ["64:ff9b::127.0.0.1", "loopback"],
  ["64:ff9b::7f00:1", "loopback"],
  ["64:ff9b::a00:1", "private"],
  ["2002:7f00:1::", "loopback"],
  ["2002:a9fe:a9fe::1", "metadata"],
  ["2002:c0a8:101:1::1", "private"]
]

const publicAddresses = [
  "93.184.216.34",
  "8.8.8.8",
  "1.1.1.1",
  "11.0.0.1",
  "172.32.0.1",
  "100.128.0.1",
  "169.253.255.255",
  "2606:4700::1111",
  "2a00:1450:4001:80b::200e",
  "::ffff:93.184.216.34",
  "64:ff9b::5db8:d822",
  "2002:5db8:d822::1"
]

describe("AddressPolicy", () => {
  it.each(forbidden)("refuses %s as %s", (address, rule) => {
    const refusal = strict.check(address)
    expect(refusal?.rule).toBe(rule)
    expect(refusal?.address).toBe(address)
  })

  it("says which rule matched, and which IPv4 address a carrying form carries", () => {
    expect(strict.check("127.0.0.1")?.message).toBe("127.0.0.1 is a loopback address")
    expect(strict.check("169.254.169.254")?.message).toBe("169.254.169.254 is a cloud metadata address")
    expect(strict.check("::ffff:7f00:1")?.message).toBe(
      "::ffff:7f00:1 is the IPv4-mapped form of 127.0.0.1, a loopback address"
    )
    expect(strict.check("::7f00:1")?.message).toBe(
      "::7f00:1 is the IPv4-compatible form of 127.0.0.1, a loopback address"
    )
    expect(strict.check("64:ff9b::a00:1")?.message).toBe(
      "64:ff9b::a00:1 is the NAT64 form of 10.0.0.1, a private address"
    )
    expect(strict.check("2002:a9fe:a9fe::1")?.message).toBe(
      "2002:a9fe:a9fe::1 is the 6to4 form of 169.254.169.254, a cloud metadata address"
    )
  })

  it.each(publicAddresses)("allows the public address %s", (address) => {
    expect(strict.check(address)).toBeUndefined()
  })

  it.each(["localhost", "", "1.2.3", "::g", "example.com"])("refuses %j, which is no IP address", (text) => {
    expect(strict.check(text)?.rule).toBe("not an address")
  })

  it("with allowPrivate, allows loopback, private and shared addresses but not link-local or metadata", () => {
    const local = policy({ allowPrivate: true })
    for (const address of [
      "127.0.0.1",
      "::1",
      "::ffff:127.0.0.1",
      "10.1.2.3",
      "192.168.0.10",
      "fd00::1",
      "100.64.0.1"
    ]) {
      expect(local.check(address), address).toBeUndefined()
    }
    for (const address of ["169.254.169.254", "100.100.100.200", "fd00:ec2::254", "169.254.1.1", "fe80::1"]) {
      expect(local.check(address)?.rule, address).toMatch(/metadata|link-local/)
    }
    for (const address of ["0.0.0.0", "::", "224.0.0.1", "255.255.255.255", "192.0.2.1"]) {
      expect(local.check(address), address).toBeDefined()
    }
  })

  it("allows what the allow-list names, in any form that carries it, and nothing next to it", () => {
    const allowed = policy({ allow: ["10.20.0.0/16", "169.254.169.254", "fe80::/10"] })
    for (const address of [
      "10.20.1.2",
      "::ffff:10.20.1.2",
      "64:ff9b::a14:102",
      "169.254.169.254",
      "fe80::1"
    ]) {
      expect(allowed.check(address), address).toBeUndefined()
    }
    expect(allowed.check("10.21.0.1")?.rule).toBe("private")
    expect(allowed.check("169.254.169.253")?.rule).toBe("link-local")
    expect(allowed.check("127.0.0.1")?.rule).toBe("loopback")
  })

  it.each([
    "10.0.0.0/33",
    "fe80::/129",
    "bogus",
    "10.0.0.0/8/1",
    "10.0.0.0/",
    "10.0.0.0/-1",
    "10.0.0.0/ 8",
    "10.0/8"
  ])("rejects the allow entry %j", (entry) => {
    const made = AddressPolicy.make({ allow: ["127.0.0.1/32", entry] })
    expect(Result.isFailure(made) && made.failure).toContain(JSON.stringify(entry))
  })
})

describe("WebhookUrl.check", () => {
  const refusedBy = (url: string, p = strict) => {
    const checked = WebhookUrl.check(url, p)
    return Result.isFailure(checked) ? checked.failure : undefined
  }

  it.each([
    ["http://127.0.0.1/", "127.0.0.1 is a loopback address"],
    ["http://2130706433/", "127.0.0.1 is a loopback address"],
    ["http://017700000001/", "127.0.0.1 is a loopback address"],
    ["http://0x7f000001/", "127.0.0.1 is a loopback address"],
    ["http://0177.0.0.1/", "127.0.0.1 is a loopback address"],
    ["http://0x7f.1/", "127.0.0.1 is a loopback address"],
    ["http://127.1/", "127.0.0.1 is a loopback address"],
    ["http://127.0.0.1./", "127.0.0.1 is a loopback address"],
    ["http://１２７.0.0.1/", "127.0.0.1 is a loopback address"],
    ["http://%31%32%37.0.0.1/", "127.0.0.1 is a loopback address"],
    ["http://10.1/", "10.0.0.1 is a private address"],
    ["http://0/", "0.0.0.0 is an unspecified address"],
    ["http://[::1]:8080/", "::1 is a loopback address"],
    ["http://[::ffff:127.0.0.1]/", "::ffff:7f00:1 is the IPv4-mapped form of 127.0.0.1, a loopback address"],
    [
      "http://[0:0:0:0:0:ffff:7f00:1]/",
      "::ffff:7f00:1 is the IPv4-mapped form of 127.0.0.1, a loopback address"
    ],
    ["http://[::127.0.0.1]/", "::7f00:1 is the IPv4-compatible form of 127.0.0.1, a loopback address"],
    ["http://[64:ff9b::127.0.0.1]/", "64:ff9b::7f00:1 is the NAT64 form of 127.0.0.1, a loopback address"],
    ["https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"],
    ["http://[fe80::1]/", "fe80::1 is a link-local address"]
  ])("refuses %s at once: %s", (url, message) => {
    expect(refusedBy(url)).toBe(message)
  })

  it.each([
    ["ftp://example.com/hook", "expected an http:// or https:// URL with a host"],
    ["file:///etc/passwd", "expected an http:// or https:// URL with a host"],
    ["javascript:alert(1)", "expected an http:// or https:// URL with a host"],
    ["example.com/hook", "expected an http:// or https:// URL with a host"],
    ["http://", "expected an http:// or https:// URL with a host"],
    ["http://[::1/", "expected an http:// or https:// URL with a host"],
    ["http://user:pass@example.com/", "a webhook URL carries no user name or password"],
    ["http://user@example.com/", "a webhook URL carries no user name or password"],
    [`https://example.com/${"a".repeat(2048)}`, "a webhook URL is at most 2048 characters"]
  ])("refuses %s: %s", (url, message) => {
    expect(refusedBy(url)).toBe(message)
  })

  it("accepts public URLs, normalized, and names whatever they resolve to (judged when connecting)", () => {
    const href = (url: string) => Result.getOrThrow(WebhookUrl.check(url, strict)).href
    expect(href("HTTPS://Hooks.Example.com/kiln?x=1")).toBe("https://hooks.example.com/kiln?x=1")
    expect(href("http://93.184.216.34:8080/hook")).toBe("http://93.184.216.34:8080/hook")
    expect(href("https://[2606:4700::1111]/")).toBe("https://[2606:4700::1111]/")
    expect(href("http://localhost:3000/")).toBe("http://localhost:3000/")
    expect(href(`https://example.com/${"a".repeat(2048 - "https://example.com/".length)}`)).toHaveLength(2048)
  })

  it("accepts a loopback URL when the policy allows private addresses", () => {
    expect(refusedBy("http://127.0.0.1:8080/hook", policy({ allowPrivate: true }))).toBeUndefined()
    expect(refusedBy("http://[::ffff:127.0.0.1]/", policy({ allowPrivate: true }))).toBeUndefined()
  })
})
