/**
 * Which IP addresses a webhook may be sent to. A webhook URL is chosen by a client, so without this a
 * client could make Kiln POST to its own loopback services, the private network around it or a cloud
 * metadata endpoint (SSRF). Every address is judged twice: an IP literal when the URL is saved, and every
 * address a name resolves to when the connection is made (see `send.ts`).
 *
 * IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`, translated, compatible `::a.b.c.d`,
 * NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the IPv4 address they carry: `BlockList` only
 * sees through the mapped form.
 */
import { BlockList, isIP } from "node:net"
import { Result } from "effect"

/** The rule an address was refused by. */
export type Rule =
  | "not an address"
  | "unspecified"
  | "loopback"
  | "private"
  | "shared"
  | "link-local"
  | "metadata"
  | "multicast"
  | "broadcast"
  | "documentation"
  | "reserved"

export interface Refusal {
  readonly address: string
  readonly rule: Rule
  /** Says which rule matched: "127.0.0.1 is a loopback address". */
  readonly message: string
}

export interface Options {
  /**
   * Permits loopback, private (RFC 1918, unique local) and shared (carrier-grade NAT) addresses: a host
   * whose receivers run beside it, and the tests' local receiver. Link-local and cloud metadata addresses
   * stay refused: only `allow` can permit them.
   */
  readonly allowPrivate?: boolean
  /** CIDRs (`10.1.0.0/16`, `fd00::/8`) or single addresses permitted whatever rule they fall under. */
  readonly allow?: ReadonlyArray<string>
}

export interface AddressPolicy {
  /** Why `address` may not be connected to, or undefined when it may. */
  readonly check: (address: string) => Refusal | undefined
}

/** A policy from a host's options; fails with a message naming an `allow` entry that is no CIDR. */
export const make = (options: Options = {}): Result.Result<AddressPolicy, string> => {
  const allowed = { 4: new BlockList(), 6: new BlockList() }
  for (const entry of options.allow ?? []) {
    const problem = addAllowed(allowed, entry)
    if (problem !== undefined) return Result.fail(problem)
  }
  const permitted = (address: Judged) =>
    allowed[address.family].check(address.address, familyName[address.family])
  const check = (address: string): Refusal | undefined => {
    const judged = judge(address)
    if (judged === undefined) return undefined
    if (judged.rule === "not an address")
      return refusal(address, judged.rule, `${address} is not an IP address`)
    const candidates: ReadonlyArray<Judged> =
      judged.embedded === undefined
        ? [{ address, family: isIP(address) as 4 | 6 }]
        : [
            { address, family: 6 },
            { address: judged.embedded.v4, family: 4 }
          ]
    if (candidates.some(permitted)) return undefined
    if (options.allowPrivate === true && privateRules.has(judged.rule)) return undefined
    const what = phrases[judged.rule]
    return refusal(
      address,
      judged.rule,
      judged.embedded === undefined
        ? `${address} is ${what}`
        : `${address} is the ${judged.embedded.form} form of ${judged.embedded.v4}, ${what}`
    )
  }
  return Result.succeed({ check })
}

/** Refuses every special-purpose address: the policy unless a host says otherwise. */
export const strict: AddressPolicy = Result.getOrThrow(make())

/** The rules `allowPrivate` lifts. */
const privateRules: ReadonlySet<Rule> = new Set<Rule>(["loopback", "private", "shared"])

const phrases: Record<Rule, string> = {
  "not an address": "not an IP address",
  unspecified: "an unspecified address",
  loopback: "a loopback address",
  private: "a private address",
  shared: "a shared (carrier-grade NAT) address",
  "link-local": "a link-local address",
  metadata: "a cloud metadata address",
  multicast: "a multicast address",
  broadcast: "the broadcast address",
  documentation: "a documentation address",
  reserved: "a reserved address"
}

const familyName = { 4: "ipv4", 6: "ipv6" } as const

interface Judged {
  readonly address: string
  readonly family: 4 | 6
}

/** Earlier rules win: a metadata address is also link-local, and says the more useful thing. */
const rules4: ReadonlyArray<readonly [Rule, ReadonlyArray<string>]> = [
  // AWS, GCP, Azure, Oracle; ECS task and EKS pod credentials; Alibaba; Azure's wire server (a public
  // address only the host it runs on can reach).
  [
    "metadata",
    ["169.254.169.254/32", "169.254.170.2/32", "169.254.170.23/32", "100.100.100.200/32", "168.63.129.16/32"]
  ],
  ["broadcast", ["255.255.255.255/32"]],
  ["unspecified", ["0.0.0.0/8"]],
  ["loopback", ["127.0.0.0/8"]],
  ["private", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]],
  ["shared", ["100.64.0.0/10"]],
  ["link-local", ["169.254.0.0/16"]],
  ["documentation", ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]],
  ["multicast", ["224.0.0.0/4"]],
  // IETF protocol assignments, benchmarking, the deprecated 6to4 relay anycast, class E.
  ["reserved", ["192.0.0.0/24", "198.18.0.0/15", "192.88.99.0/24", "240.0.0.0/4"]]
]

const rules6: ReadonlyArray<readonly [Rule, ReadonlyArray<string>]> = [
  ["metadata", ["fd00:ec2::254/128", "fd00:ec2::23/128"]],
  ["unspecified", ["::/128"]],
  ["loopback", ["::1/128"]],
  // Unique local, the deprecated site-local, local-use NAT64.
  ["private", ["fc00::/7", "fec0::/10", "64:ff9b:1::/48"]],
  ["link-local", ["fe80::/10"]],
  ["documentation", ["2001:db8::/32", "3fff::/20"]],
  ["multicast", ["ff00::/8"]],
  // Discard-only; IETF protocol assignments (Teredo, benchmarking, ORCHID).
  ["reserved", ["100::/64", "2001::/23"]]
]

/** Each rule's addresses, one list per family: a `BlockList` matches across families in ways of its own. */
const compile = (rules: ReadonlyArray<readonly [Rule, ReadonlyArray<string>]>, family: "ipv4" | "ipv6") =>
  rules.map(([rule, cidrs]) => {
    const list = new BlockList()
    for (const cidr of cidrs) {
      const [network, prefix] = cidr.split("/")
      list.addSubnet(network!, Number(prefix), family)
    }
    return [rule, list] as const
  })

const compiled4 = compile(rules4, "ipv4")
const compiled6 = compile(rules6, "ipv6")

/** Everything outside global unicast that no rule above names is unassigned. */
const globalUnicast = compile([["reserved", ["2000::/3"]]], "ipv6")[0]![1]

const match = (compiled: ReturnType<typeof compile>, address: string, family: "ipv4" | "ipv6") =>
  compiled.find(([, list]) => list.check(address, family))?.[0]

interface Judgement {
  readonly rule: Rule
  readonly embedded?: { readonly v4: string; readonly form: string }
}

/** The rule `address` falls under, or undefined for a public address. */
const judge = (address: string): Judgement | undefined => {
  const family = isIP(address)
  if (family === 4) {
    const rule = match(compiled4, address, "ipv4")
    return rule === undefined ? undefined : { rule }
  }
  if (family !== 6) return { rule: "not an address" }
  // No IPv6 rule overlaps a form that carries IPv4 but `::` and `::1`, which must win.
  const rule = match(compiled6, address, "ipv6")
  if (rule !== undefined) return { rule }
  const embedded = embeddedV4(groupsOf(address))
  if (embedded !== undefined) {
    const rule = match(compiled4, embedded.v4, "ipv4")
    return rule === undefined ? undefined : { rule, embedded }
  }
  return globalUnicast.check(address, "ipv6") ? undefined : { rule: "reserved" }
}

/** The IPv4 address an IPv6 address carries, and the name of the form that carries it. */
const embeddedV4 = (g: ReadonlyArray<number>): { readonly v4: string; readonly form: string } | undefined => {
  const zeros = (from: number, to: number) => g.slice(from, to).every((group) => group === 0)
  const v4 = (high: number, low: number) => `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`
  if (zeros(0, 5) && g[5] === 0xffff) return { v4: v4(g[6]!, g[7]!), form: "IPv4-mapped" }
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return { v4: v4(g[6]!, g[7]!), form: "IPv4-translated" }
  if (zeros(0, 6)) return { v4: v4(g[6]!, g[7]!), form: "IPv4-compatible" }
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return { v4: v4(g[6]!, g[7]!), form: "NAT64" }
  if (g[0] === 0x2002) return { v4: v4(g[1]!, g[2]!), form: "6to4" }
  return undefined
}

/** The eight 16-bit groups of an address `isIP` has accepted as IPv6 (zone, `::` and dotted tail allowed). */
const groupsOf = (address: string): ReadonlyArray<number> => {
  const [head = "", tail] = address.split("%")[0]!.split("::")
  const groups = (part: string) =>
    part === ""
      ? []
      : part.split(":").flatMap((piece) => {
          if (!piece.includes(".")) return [Number.parseInt(piece, 16)]
          const [a, b, c, d] = piece.split(".").map(Number)
          return [(a! << 8) | b!, (c! << 8) | d!]
        })
  const before = groups(head)
  const after = tail === undefined ? [] : groups(tail)
  return [...before, ...new Array<number>(8 - before.length - after.length).fill(0), ...after]
}

const addAllowed = (allowed: Record<4 | 6, BlockList>, entry: string): string | undefined => {
  const [network = "", prefix, extra] = entry.split("/")
  const family = isIP(network)
  const bits = prefix === undefined ? (family === 4 ? 32 : 128) : Number(prefix)
  const fits = /^\d{1,3}$/.test(prefix ?? "0") && bits <= (family === 4 ? 32 : 128)
  if (family === 0 || extra !== undefined || !fits) {
    return `allow: expected an IP address or CIDR such as 10.0.0.0/8 or fd00::/8, got "${entry}"`
  }
  allowed[family as 4 | 6].addSubnet(network, bits, familyName[family as 4 | 6])
  return undefined
}

const refusal = (address: string, rule: Rule, message: string): Refusal => ({ address, rule, message })
