/**
 * Fuzzed requests against the real server: random and hostile query strings, bodies, path ids and
 * credentials for every endpoint. Whatever arrives, the answer is never a 5xx, every 4xx is the API's
 * error body, and a list that succeeds is a page.
 *
 * Requests go out with `node:http` and a raw request target, so `..`, `%zz`, `%2F` and bytes above 0x7F
 * reach the server as written (`fetch` would normalize or re-encode them).
 */
import { Agent, request } from "node:http"
import { gzipSync } from "node:zlib"
import { Event, Fields, OrderBy } from "@kiln/core"
import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startServer, type TestServer, workspaceWithApp } from "./fixtures/server.ts"

const seed = 20_260_124
/** Requests in flight at once: one fast-check run sends one batch. */
const batch = 8
const runs = 640
const minRequests = 5_000

const maxUrl = 8 * 1024
const maxBody = 1024 * 1024
/** Node's limit on the request line and headers (`maxHeaderSize` of Kiln's server). */
const maxHead = 16 * 1024

interface Sent {
  readonly method: string
  /** The raw request target: characters U+0021–U+00FF only, which Node sends without encoding them. */
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly body?: string | Uint8Array | undefined
  /** Sent with `transfer-encoding: chunked`, so the server cannot refuse it by its length alone. */
  readonly chunked?: boolean | undefined
  /** What a 2xx must be. */
  readonly shape?: "page" | "logs" | "feed" | undefined
}

interface Received {
  readonly status: number
  readonly type: string
  readonly text: string
}

// -----------------------------------------------------------------------------------------------------
// Hostile text
// -----------------------------------------------------------------------------------------------------

const corpus = [
  // Numbers that are not quite numbers, and JSON that is not a string.
  ...["", " ", "0", "-1", "1e309", "NaN", "Infinity", "-0", "0x1f", "1.5", "99999999999999999999", "+1"],
  ...[" 1", "00000001", "null", "true", "[]", "{}"],
  // LIKE and GLOB metacharacters, SQL injection, template and script injection.
  ...["%", "_", "*", "?", "[a-z]", "\\", "%_*?[]\\", "%%", "\\%", "'", '"', "/*", "{{7*7}}", "<script>"],
  ...["' OR '1'='1", "'; DROP TABLE builds; --", '" OR 1=1 --', "1) UNION SELECT * FROM api_tokens --"],
  "; ATTACH DATABASE '/tmp/kiln-fuzz.db' AS x; --",
  // Keys that reach into prototypes.
  ...["__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "$where"],
  // NUL, control characters, separators, lone surrogates, astral and combining characters.
  ...["\u0000", "a\u0000b", "\r\n", "\t", "\u001b[31m", "\u007f", "\u2028", "\ufeff", "\ud800", "a\udfffb"],
  ...["\uffff", "😀", "e\u0301", "ｆｕｌｌ"],
  // Paths, and ids that are almost right.
  ...["../../etc/passwd", "..", ".", "/", "//", "bld_", "wsp_01jxxxxxxxxxxxxxxxxxxxxxxx"]
]

/** Lengths just under and over the caps: field maxima, 1 KiB filter strings, 4 KiB cursors, the URL. */
const lengths = [100, 101, 200, 201, 1024, 1025, 4096, 4097, 8192, 8193]

const hostileText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...corpus) },
  { weight: 2, arbitrary: fc.string() },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 10 }) },
  { weight: 1, arbitrary: fc.oneof(fc.double(), fc.integer(), fc.bigInt()).map(String) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...lengths), fc.constantFrom("a", "é", "%"))
      .map(([n, unit]) => unit.repeat(n))
  }
)

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Text a header can carry (Node refuses the rest before sending). */
const headerSafe = (text: string) => text.replace(/[^\t\x20-\x7e\x80-\xff]/g, "?")

/** Percent-encodes the UTF-8 of `text` (a lone surrogate becomes U+FFFD), leaving the unreserved set. */
const encode = (text: string) =>
  Array.from(Buffer.from(text, "utf8"), (byte) => {
    const char = String.fromCharCode(byte)
    return /[A-Za-z0-9._~-]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
  }).join("")

/** As written, encoding only what Node cannot put in a request line: `&`, `=`, `#` and `%` stay raw. */
const raw = (text: string) =>
  Array.from(text, (char) => (/^[\u0021-\u00ff]$/.test(char) ? char : encode(char))).join("")

const garbage = [
  ...["%zz", "%", "%0", "%00", "%FF", "%C3%28", "%ED%A0%80", "%E2%82", "&&", "=", "==", ";", "#x", "+"],
  "\xff\xfe"
]

/** How a value is put in a URL: properly encoded, raw, or encoded with garbage spliced in. */
const inUrl = (value: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 6, arbitrary: value.map(encode) },
    { weight: 1, arbitrary: value.map(raw) },
    {
      weight: 1,
      arbitrary: fc.tuple(value, fc.constantFrom(...garbage), fc.nat()).map(([text, junk, at]) => {
        const encoded = encode(text)
        const i = at % (encoded.length + 1)
        return `${encoded.slice(0, i)}${junk}${encoded.slice(i)}`
      })
    }
  )

// -----------------------------------------------------------------------------------------------------
// Filters, orders, cursors
// -----------------------------------------------------------------------------------------------------

type Resource = "builds" | "workspaces" | "apps" | "app-versions" | "tokens"

const tables: Record<Resource, Fields.Table> = {
  builds: Fields.tables.builds,
  workspaces: Fields.tables.workspaces,
  apps: Fields.tables.apps,
  "app-versions": Fields.tables.appVersions,
  tokens: Fields.tables.tokens
}
const resources = Object.keys(tables) as ReadonlyArray<Resource>

const enumValues = [
  ...new Set(
    Object.values(Fields.tables).flatMap((table) => Object.values(table.fields).flatMap((f) => f.values))
  )
]
const operators = [
  ...["eq", "neq", "lt", "lte", "gt", "gte", "contains", "startsWith", "endsWith", "in", "notIn", "isNull"],
  ...["like", "glob", "regexp", "match", "__proto__", "constructor", "$ne", ""]
]

/** JSON nested `depth` levels deep, written as text: building it as a value would overflow here first. */
const nested = (kind: string, depth: number) => {
  const [open, close] =
    kind === "and" || kind === "or"
      ? [`{"${kind}":[`, "]}"]
      : kind === "array"
        ? ["[", "]"]
        : [`{"${kind}":`, "}"]
  return `${open.repeat(depth)}{}${close.repeat(depth)}`
}

const depth = fc.oneof(
  fc.constantFrom(5, 6, 7, 28, 29, 100, 1_000, 4_500, 10_000),
  fc.integer({ min: 1, max: 20_000 })
)
const deepText = fc
  .tuple(fc.constantFrom("and", "or", "not", "array", "a", "app", "__proto__"), depth)
  .map(([kind, levels]) => nested(kind, levels))

const badJson = fc.constantFrom(
  ...["", "{", "}", "[", "null", "0", '"x"', "NaN", "undefined", "{'a':1}", '{"a":}', '{"and":[}'],
  ...['{"a":1}{"b":2}', "\ufeff{}", "{}\u0000", '{"\\ud800":1}']
)

const timestamp = fc.oneof(
  fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
  fc.constantFrom("2026-02-30", "2026-13-01T00:00:00Z", "+275760-09-13T00:00:00.000Z", "2026-01-01T24:00:00Z")
)

const scalar = fc.oneof(
  hostileText,
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(...enumValues),
  timestamp
)
const operand = fc.oneof(scalar, fc.array(scalar, { maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }))

const valueOfType = (field: Fields.Field): fc.Arbitrary<unknown> => {
  switch (field.type) {
    case "string":
      return hostileText
    case "number":
      return fc.oneof(fc.integer(), fc.double())
    case "timestamp":
      return timestamp
    case "enum":
      return fc.constantFrom(...field.values)
    case "boolean":
      return fc.boolean()
  }
}

const compare = ["eq", "neq", "lt", "lte", "gt", "gte", "in", "notIn", "isNull"]
const operatorsOfType = (field: Fields.Field) =>
  field.type === "string"
    ? [...compare, "contains", "startsWith", "endsWith"]
    : field.type === "boolean"
      ? ["eq"]
      : field.type === "enum"
        ? ["eq", "neq", "in", "notIn", "isNull"]
        : compare

/** A predicate the parser mostly accepts, so that hostile values (`%`, `_`, quotes) reach the SQL. */
const typedPredicate = (table: Fields.Table): fc.Arbitrary<unknown> =>
  fc
    .constantFrom(...Object.entries(table.fields).filter(([, field]) => field.filter))
    .chain(([name, field]) =>
      fc
        .constantFrom(...operatorsOfType(field))
        .chain((op) =>
          (op === "in" || op === "notIn"
            ? fc.array(valueOfType(field), { maxLength: 101 })
            : op === "isNull"
              ? fc.boolean()
              : valueOfType(field)
          ).map((value) => ({ [name]: { [op]: value } }))
        )
    )

/** The same across a relation: `{"app": …}`, `{"steps": {"some": …}}`. */
const relatedPredicates = (table: Fields.Table) =>
  Object.entries(table.relations).map(([name, relation]) => {
    const inner = typedPredicate(Fields.tables[relation.entity])
    return relation.kind === "one"
      ? inner.map((filter) => ({ [name]: filter }))
      : fc
          .tuple(fc.constantFrom("some", "every", "none"), inner)
          .map(([q, filter]) => ({ [name]: { [q]: filter } }))
  })

const typedFilter = (table: Fields.Table) => fc.oneof(typedPredicate(table), ...relatedPredicates(table))

const filterValue = (table: Fields.Table) => {
  const names = [...Object.keys(table.fields), "metadata", "source", "__proto__", "constructor", "unknown"]
  const typed = typedFilter(table)
  return fc.letrec<{ node: unknown }>((tie) => ({
    node: fc.oneof(
      { depthSize: "small" },
      { weight: 4, arbitrary: typed },
      fc.dictionary(
        fc.constantFrom(...names),
        fc.dictionary(fc.constantFrom(...operators), operand, { maxKeys: 3 }),
        {
          maxKeys: 3
        }
      ),
      fc.record({ and: fc.array(tie("node"), { maxLength: 4 }) }),
      fc.record({ or: fc.array(tie("node"), { maxLength: 4 }) }),
      fc.record({ not: tie("node") }),
      fc.dictionary(
        fc.constantFrom("app", "appVersion", "steps"),
        fc.oneof(
          tie("node"),
          fc.dictionary(fc.constantFrom("some", "every", "none", "any"), tie("node"), { maxKeys: 2 })
        ),
        { minKeys: 1, maxKeys: 1 }
      ),
      fc.jsonValue({ maxDepth: 3 })
    )
  })).node
}

const filterText = (table: Fields.Table) => {
  const json = filterValue(table).map((value) => JSON.stringify(value))
  return fc.oneof(
    { weight: 5, arbitrary: json },
    { weight: 2, arbitrary: deepText },
    { weight: 1, arbitrary: badJson },
    {
      weight: 1,
      arbitrary: fc.tuple(json, fc.nat()).map(([text, at]) => text.slice(0, at % (text.length + 1)))
    },
    // Around the URL limit once encoded: some land just under it, some just over.
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: maxUrl - 300, max: maxUrl + 100 })
        .map((n) => `{"id":{"eq":"${"a".repeat(n)}"}}`)
    }
  )
}

const orderByText = (table: Fields.Table) =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc
        .array(
          fc.dictionary(
            fc.constantFrom(...Object.keys(table.fields), "metadata", "__proto__", "x"),
            fc.constantFrom<unknown>(...OrderBy.directions, "ASC", "up", "", 1, null, ["asc"]),
            { maxKeys: 2 }
          ),
          { maxLength: 6 }
        )
        .map((keys) => JSON.stringify(keys))
    },
    { weight: 1, arbitrary: badJson },
    { weight: 1, arbitrary: hostileText }
  )

/** A valid cursor changed: cut short, one character replaced, parts swapped or doubled. */
const mutated = (valid: ReadonlyArray<string>) =>
  fc
    .tuple(
      fc.constantFrom(...valid),
      fc.nat(),
      fc.constantFrom("cut", "flip", "swap", "double", "dot", "pad", "upper")
    )
    .map(([text, at, how]) => {
      const i = at % Math.max(text.length, 1)
      const [body = "", tag = ""] = text.split(".")
      switch (how) {
        case "cut":
          return text.slice(0, i)
        case "flip":
          return `${text.slice(0, i)}${text[i] === "A" ? "B" : "A"}${text.slice(i + 1)}`
        case "swap":
          return `${tag}.${body}`
        case "double":
          return `${text}${text}`
        case "dot":
          return `${text}.`
        case "pad":
          return `${text}==`
        default:
          return text.toUpperCase()
      }
    })

/** An unsigned cursor payload in the server's format, for the right entity or not, with a made-up tag. */
const forged = fc
  .tuple(fc.constantFrom(...Object.keys(Fields.tables), "__proto__"), fc.jsonValue({ maxDepth: 2 }))
  .map(([entity, values]) => {
    const body = Buffer.from(
      JSON.stringify({ e: entity, o: "createdAt:df,id:df", s: "x", v: values })
    ).toString("base64url")
    return `${body}.${Buffer.alloc(32).toString("base64url")}`
  })

// -----------------------------------------------------------------------------------------------------
// Seeded data, and the requests built from it
// -----------------------------------------------------------------------------------------------------

interface Seeds {
  readonly admin: string
  /** A reader and a writer scoped to the seeded workspace. */
  readonly others: ReadonlyArray<string>
  /** Per resource; tokens are only the one made to be revoked, never the admin's. */
  readonly ids: Record<Resource, ReadonlyArray<string>>
  /** The end cursor of every list: valid for their own resource, foreign to the others. */
  readonly cursors: Record<Resource, string>
  readonly logCursor: string
  /** The feed's cursor after the seeded events, a webhook endpoint and its ping's delivery. */
  readonly eventCursor: string
  readonly webhookId: string
  /** An endpoint made to be deleted: the other one stays, so its routes are fuzzed past the lookup. */
  readonly webhookVictim: string
  readonly deliveryId: string
  readonly workspaceId: string
  readonly appId: string
  readonly versionId: string
}

const sha = "0123456789abcdef".repeat(3).slice(0, 40)

const seed201 = async (server: TestServer, path: string, body: unknown) => {
  const reply = await call(server, "POST", path, { body })
  if (reply.status !== 201) throw new Error(`seeding ${path} failed: ${reply.status} ${reply.text}`)
  return reply.body as { id: string }
}

const seedData = async (server: TestServer): Promise<Seeds> => {
  const { workspace, app } = await workspaceWithApp(server)
  const version = await seed201(server, "/api/app-versions", {
    appId: app.id,
    source: { type: "git", url: "https://example.com/r.git", commitSha: sha }
  })
  // Pending archive versions, so uploads get as far as the archive checks.
  const archives = await Promise.all(
    [1, 2, 3].map(() => seed201(server, "/api/app-versions", { appId: app.id, source: { type: "archive" } }))
  )
  const builds = await Promise.all(
    [1, 2, 3].map((i) => seed201(server, "/api/builds", { appVersionId: version.id, metadata: { i } }))
  )
  const victim = await seed201(server, "/api/tokens", {
    name: "Fuzz victim",
    workspaceIds: [workspace.id],
    role: "read"
  })
  const cursors = Object.fromEntries(
    await Promise.all(
      resources.map(async (resource) => {
        const page = await call(server, "GET", `/api/${resource}?limit=1`)
        return [resource, page.body.pageInfo.endCursor as string] as const
      })
    )
  ) as Record<Resource, string>
  const logs = await call(server, "GET", `/api/builds/${builds[0]!.id}/logs`)
  const webhook = await seed201(server, "/api/webhooks", {
    workspaceId: workspace.id,
    url: "https://hooks.example.com/fuzz"
  })
  const victimHook = await seed201(server, "/api/webhooks", {
    workspaceId: workspace.id,
    url: "https://hooks.example.com/victim"
  })
  const ping = await call(server, "POST", `/api/webhooks/${webhook.id}/ping`)
  const feed = await call(server, "GET", "/api/events?limit=3")
  return {
    admin: server.admin,
    others: await Promise.all([
      server.token("read", [workspace.id] as never),
      server.token("write", [workspace.id] as never)
    ]),
    ids: {
      builds: builds.map((b) => b.id),
      workspaces: [workspace.id],
      apps: [app.id],
      "app-versions": [version.id, ...archives.map((v) => v.id)],
      tokens: [victim.id]
    },
    cursors,
    logCursor: logs.body.cursor,
    eventCursor: feed.body.cursor,
    webhookId: webhook.id,
    webhookVictim: victimHook.id,
    deliveryId: ping.body.id,
    workspaceId: workspace.id,
    appId: app.id,
    versionId: version.id
  }
}

const requests = (seeds: Seeds): fc.Arbitrary<Sent> => {
  const allIds = Object.values(seeds.ids).flat()
  const allCursors = Object.values(seeds.cursors)
  const cursor = fc.oneof(
    fc.constantFrom(...allCursors),
    mutated(allCursors),
    forged,
    fc.base64String({ maxLength: 200 }),
    hostileText
  )
  const logCursor = fc.oneof(
    fc.constantFrom(seeds.logCursor, Buffer.from("log:999999999999999").toString("base64url")),
    mutated([seeds.logCursor]),
    fc.bigInt().map((n) => Buffer.from(`log:${n}`).toString("base64url")),
    fc.constantFrom(...allCursors),
    hostileText
  )
  const numberish = fc.oneof(
    fc.constantFrom("1", "100", "101", "0", "10000", "10001", "01", "1.0", "1e2", "0x10", "-5", "９"),
    fc.integer().map(String),
    hostileText
  )
  const idText = fc.oneof(fc.constantFrom(...allIds), mutated(allIds), hostileText)
  const ids = fc.oneof(
    fc.array(idText, { maxLength: 5 }).map((list) => list.join(",")),
    fc.integer({ min: 99, max: 102 }).map((n) => Array.from({ length: n }, () => allIds[0]).join(",")),
    fc.constantFrom(",", ",,", " , ", `${allIds[0]},`)
  )

  /** A query string: known parameters with hostile values, unknown and repeated ones, garbage encodings. */
  const query = (values: Record<string, fc.Arbitrary<string>>) => {
    const known = Object.entries(values).map(([key, value]) =>
      fc.tuple(fc.constant(encode(key)), inUrl(value))
    )
    const unknown = fc.tuple(inUrl(hostileText), inUrl(hostileText))
    return fc
      .array(fc.oneof({ weight: 5, arbitrary: fc.oneof(...known) }, { weight: 1, arbitrary: unknown }), {
        maxLength: 6
      })
      .map((pairs) =>
        pairs.length === 0 ? "" : `?${pairs.map(([key, value]) => `${key}=${value}`).join("&")}`
      )
  }

  const listQuery = (resource: Resource) => {
    const table = tables[resource]
    const shorthands = Object.fromEntries(
      Object.keys(table.shorthands).map((key) => [
        key,
        fc.oneof(fc.constantFrom(...allIds), fc.constantFrom(...enumValues), hostileText)
      ])
    )
    const hostile = query({
      limit: numberish,
      after: cursor,
      before: cursor,
      ids,
      filter: filterText(table),
      orderBy: orderByText(table),
      ...shorthands
    })
    // Mostly valid, so that typed filters with hostile values, orders and cursors get as far as the SQL.
    const sortable = Object.keys(table.fields).filter((name) => table.fields[name]!.sort)
    const limit = fc.integer({ min: 1, max: 100 }).map(String)
    const filter = typedFilter(table).map((value) => JSON.stringify(value))
    const orderBy = fc
      .array(fc.tuple(fc.constantFrom(...sortable), fc.constantFrom(...OrderBy.directions)), {
        minLength: 1,
        maxLength: 3
      })
      .map((keys) => JSON.stringify(keys.map(([field, direction]) => ({ [field]: direction }))))
    // The seeded cursor is bound to the default order, so it goes without `orderBy`.
    const plausible = fc
      .oneof(
        fc.record({ limit, filter, orderBy }, { requiredKeys: [] }),
        fc.record({ limit, filter, after: fc.constant(seeds.cursors[resource]) }, { requiredKeys: ["after"] })
      )
      .map((params) => {
        const pairs = Object.entries(params).map(([key, value]) => `${key}=${encode(value)}`)
        return pairs.length === 0 ? "" : `?${pairs.join("&")}`
      })
    return fc.oneof({ weight: 3, arbitrary: hostile }, { weight: 2, arbitrary: plausible })
  }

  /** A path segment where an id goes: a real one (of this or another resource), a near miss, or hostile. */
  const segment = (resource: Resource) =>
    fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...seeds.ids[resource]) },
      { weight: 1, arbitrary: fc.constantFrom(...allIds) },
      { weight: 1, arbitrary: mutated(seeds.ids[resource]).map(encode) },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          ...["..", ".", "%2e%2e", "%2E.", "%2F", "a%2Fb", "..%2F..%2Fetc%2Fpasswd", "%00", "%zz", "%"],
          ...["\xff", "~"]
        )
      },
      { weight: 2, arbitrary: inUrl(hostileText) },
      { weight: 1, arbitrary: fc.constantFrom(99, 100, 101, 1_000, 9_000).map((n) => "b".repeat(n)) }
    )

  // Bodies: a valid template, then mutated; deep values are spliced in as text after `JSON.stringify`.
  const deepMarker = /"\\u0001deep:(\w+):(\d+)\\u0001"/g
  const hugeString = fc.constantFrom(201, 1_025, 8_193, 100_000, maxBody - 100).map((n) => "x".repeat(n))
  const junk: fc.Arbitrary<unknown> = fc.oneof(
    { weight: 3, arbitrary: hostileText },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.oneof(fc.double(), fc.integer(), fc.boolean(), fc.constant(null)) },
    { weight: 1, arbitrary: fc.array(hostileText, { maxLength: 4 }) },
    { weight: 1, arbitrary: hugeString },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom("array", "a", "and", "__proto__"), depth)
        .map(([kind, levels]) => `\u0001deep:${kind}:${levels}\u0001`)
    }
  )
  const hostileKey = fc
    .oneof(
      fc.constantFrom("__proto__", "constructor", "prototype", "", "colour", "id", "status", "role"),
      fc.string()
    )
    // A git source with a ref and no commit would make the server fetch from the network.
    .filter((key) => key !== "ref")

  /** Where a value can go in `value`: in its place, and at every key of every object inside it. */
  const spotsOf = (value: unknown, at: ReadonlyArray<string> = []): Array<ReadonlyArray<string>> => [
    at,
    ...(isRecord(value) ? Object.entries(value).flatMap(([key, inner]) => spotsOf(inner, [...at, key])) : [])
  ]
  const objectsOf = (value: unknown) =>
    spotsOf(value).filter((path) =>
      isRecord(path.reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], value))
    )
  const pick = <A>(list: ReadonlyArray<A>, at: number) => list[at % list.length]!
  /** A copy of `value` with `path` set to `to`, or removed when `to` is undefined. */
  const setAt = (value: unknown, path: ReadonlyArray<string>, to: unknown): unknown => {
    if (path.length === 0) return to
    const [key, ...rest] = path as [string, ...Array<string>]
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) }
    const next = setAt(copy[key], rest, to)
    if (next === undefined) delete copy[key]
    else
      Object.defineProperty(copy, key, { value: next, enumerable: true, writable: true, configurable: true })
    return copy
  }

  const jsonBody = (templates: ReadonlyArray<object>) => {
    const template = fc.constantFrom(...templates)
    const value = fc.oneof(
      { weight: 2, arbitrary: template },
      // The whole body or one value replaced; the whole body (an empty one) or one key dropped; a key added.
      {
        weight: 4,
        arbitrary: fc.tuple(template, fc.nat(), junk).map(([t, at, to]) => setAt(t, pick(spotsOf(t), at), to))
      },
      {
        weight: 2,
        arbitrary: fc.tuple(template, fc.nat()).map(([t, at]) => setAt(t, pick(spotsOf(t), at), undefined))
      },
      {
        weight: 2,
        arbitrary: fc
          .tuple(template, fc.nat(), hostileKey, junk)
          .map(([t, at, key, to]) => setAt(t, [...pick(objectsOf(t), at), key], to))
      }
    )
    const text = fc.oneof(
      {
        weight: 10,
        arbitrary: value.map((v) =>
          (JSON.stringify(v) ?? "").replace(deepMarker, (_, kind: string, levels: string) =>
            nested(kind, Number(levels))
          )
        )
      },
      { weight: 1, arbitrary: badJson }
    )
    const contentType = fc.oneof(
      { weight: 12, arbitrary: fc.constant("application/json") },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          ...["", "text/plain", "application/json; charset=utf-8", "application/json; charset=latin1"],
          ...["APPLICATION/JSON", "application/json, text/plain", "multipart/form-data; boundary=x"],
          ...["multipart/form-data", "application/x-www-form-urlencoded", "application/gzip", "*/*"]
        )
      },
      { weight: 1, arbitrary: hostileText.map(headerSafe) }
    )
    const sized = fc.oneof(
      { weight: 30, arbitrary: fc.tuple(text, fc.constant(false)) },
      // Past the 1 MiB cap, with a length the server can refuse early, and chunked so it must count.
      {
        weight: 1,
        arbitrary: fc.tuple(
          fc.constantFrom(maxBody - 20, maxBody + 1, 2 * maxBody).map((n) => `{"name":"${"x".repeat(n)}"}`),
          fc.boolean()
        )
      }
    )
    return fc.tuple(sized, contentType).map(([[body, chunked], type]) => ({
      body,
      chunked,
      headers: type === "" ? {} : { "content-type": type }
    }))
  }

  const bodies = {
    builds: jsonBody([
      { appVersionId: seeds.versionId, metadata: { note: "fuzz", nested: { list: [1, 2] } } }
    ]),
    workspaces: jsonBody([{ name: "Fuzz workspace" }]),
    apps: jsonBody([
      {
        workspaceId: seeds.workspaceId,
        handle: "fuzz",
        name: "Fuzz app",
        kind: "app",
        build: { strategy: "dockerfile", rootDirectory: "web", limits: { cpus: 1, pids: 64 } }
      }
    ]),
    "app-versions": fc.oneof(
      {
        weight: 10,
        arbitrary: jsonBody([
          { appId: seeds.appId, source: { type: "git", url: "https://example.com/r.git", commitSha: sha } },
          { appId: seeds.appId, source: { type: "archive" } }
        ])
      },
      // A ref is resolved with git: only URLs and refs it refuses or fails on without the network, unmutated.
      {
        weight: 1,
        arbitrary: fc
          .constantFrom(
            ["/nonexistent/kiln-fuzz.git", "main"],
            ["file:///nonexistent", "refs/heads/x"],
            ["ext::sh -c id", "main"],
            ["-oProxyCommand=id", "main"],
            ["https://", "main"],
            ["https://example.com/r.git", "--upload-pack=id"],
            ["https://example.com/r.git", "HEAD~1"]
          )
          .map(([url, ref]) => ({
            body: JSON.stringify({ appId: seeds.appId, source: { type: "git", url, ref } }),
            chunked: false,
            headers: { "content-type": "application/json" }
          }))
      }
    ),
    tokens: jsonBody([
      {
        name: "Fuzz token",
        workspaceIds: [seeds.workspaceId],
        role: "read",
        expiresAt: "2030-01-01T00:00:00Z"
      },
      { name: "Fuzz admin", workspaceIds: "*", role: "admin" }
    ]),
    cancel: jsonBody([{ reason: "fuzz" }, {}]),
    webhooks: jsonBody([
      {
        workspaceId: seeds.workspaceId,
        url: "https://hooks.example.com/kiln",
        types: ["build.queued", "build.finished"],
        enabled: true
      },
      { workspaceId: seeds.workspaceId, url: "http://[::ffff:7f00:1]:8080/x?y=z#f" }
    ]),
    webhookPatch: jsonBody([
      { url: "https://hooks.example.com/v2", types: [], enabled: false },
      { types: ["app_version.ready"] }
    ]),
    rotation: jsonBody([{ previousValidForSeconds: 60 }, {}])
  } satisfies Record<Resource | "cancel" | "webhooks" | "webhookPatch" | "rotation", unknown>

  const multipart = fc
    .tuple(
      fc.constantFrom("b0undary", "x", ""),
      fc.constantFrom("archive", "file", ""),
      fc.uint8Array({ maxLength: 512 }),
      fc.option(fc.nat(), { nil: undefined }),
      fc.constantFrom("same", "other", "none")
    )
    .map(([boundary, name, bytes, cut, declared]) => {
      const whole = Buffer.concat([
        Buffer.from(
          `--${boundary}\r\ncontent-disposition: form-data; name="${name}"; filename="a.tar.gz"\r\ncontent-type: application/gzip\r\n\r\n`
        ),
        bytes,
        Buffer.from(`\r\n--${boundary}--\r\n`)
      ])
      const type =
        declared === "none"
          ? "multipart/form-data"
          : `multipart/form-data; boundary=${declared === "same" ? boundary : "other"}`
      return {
        body: cut === undefined ? whole : whole.subarray(0, cut % (whole.length + 1)),
        headers: { "content-type": type }
      }
    })
  const archive = fc.oneof(
    fc
      .uint8Array({ maxLength: 2048 })
      .map((bytes) => ({ body: Buffer.from(bytes), headers: { "content-type": "application/gzip" } })),
    fc
      .tuple(
        fc.uint8Array({ maxLength: 2048 }),
        fc.nat(),
        fc.constantFrom("application/gzip", "application/x-gzip", "application/octet-stream")
      )
      .map(([bytes, cut, type]) => {
        const gz = gzipSync(bytes)
        return {
          body: cut % 2 === 0 ? gz : gz.subarray(0, cut % gz.length),
          headers: { "content-type": type }
        }
      }),
    multipart,
    jsonBody([{ archive: "x" }])
  )

  const auth = fc.oneof(
    { weight: 14, arbitrary: fc.constant({ authorization: `Bearer ${seeds.admin}` }) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(...seeds.others).map((token) => ({ authorization: `Bearer ${token}` }))
    },
    { weight: 1, arbitrary: fc.constant({}) },
    {
      weight: 2,
      arbitrary: fc
        .oneof(
          fc.constantFrom(
            ...["Bearer", "Bearer ", "Basic YWRtaW46YWRtaW4=", seeds.admin, `Token ${seeds.admin}`],
            ...[`bearer ${seeds.admin}`, `Bearer  ${seeds.admin}`, `Bearer\t${seeds.admin}`],
            ...[`Bearer ${seeds.admin} extra`, `Bearer ${seeds.admin.slice(0, -1)}`]
          ),
          mutated([seeds.admin]).map((token) => `Bearer ${token}`),
          hostileText.map((text) => `Bearer ${text}`)
        )
        .map((value) => ({ authorization: headerSafe(value) }))
    },
    // Past Node's 16 KiB header limit: refused before any route runs (431).
    { weight: 1, arbitrary: fc.constant({ authorization: `Bearer ${"x".repeat(17_000)}` }) }
  )

  const listRequest = fc
    .constantFrom(...resources)
    .chain((resource) =>
      listQuery(resource).map(
        (q): Sent => ({ method: "GET", path: `/api/${resource}${q}`, headers: {}, shape: "page" })
      )
    )
  const logsRequest = fc
    .tuple(
      segment("builds"),
      query({
        cursor: logCursor,
        limit: numberish,
        format: fc.oneof(fc.constantFrom("json", "text", "TEXT", "xml"), hostileText)
      })
    )
    .map(
      ([id, q]): Sent => ({ method: "GET", path: `/api/builds/${id}/logs${q}`, headers: {}, shape: "logs" })
    )
  const getRequest = fc
    .constantFrom(...resources)
    .chain((resource) =>
      segment(resource).map((id): Sent => ({ method: "GET", path: `/api/${resource}/${id}`, headers: {} }))
    )
  const revokeRequest = segment("tokens").map(
    (id): Sent => ({ method: "DELETE", path: `/api/tokens/${id}`, headers: {} })
  )
  const createRequest = fc.constantFrom(...resources).chain((resource) =>
    fc
      .tuple(
        bodies[resource],
        resource === "builds" ? fc.option(hostileText, { nil: undefined }) : fc.constant(undefined)
      )
      .map(
        ([body, key]): Sent => ({
          method: "POST",
          path: `/api/${resource}`,
          ...body,
          headers: key === undefined ? body.headers : { ...body.headers, "idempotency-key": headerSafe(key) }
        })
      )
  )
  const cancelRequest = fc.tuple(segment("builds"), bodies.cancel, fc.boolean()).map(
    ([id, body, empty]): Sent => ({
      method: "POST",
      path: `/api/builds/${id}/cancel`,
      ...(empty ? { headers: {} } : body)
    })
  )
  const uploadRequest = fc
    .tuple(segment("app-versions"), archive)
    .map(([id, body]): Sent => ({ method: "POST", path: `/api/app-versions/${id}/archive`, ...body }))
  // The feed and webhook endpoints: hostile cursors, types and ids, and mutated bodies.
  const eventCursor = fc.oneof(
    fc.constantFrom(
      seeds.eventCursor,
      "0",
      "1.2",
      "99999999999999999999",
      "1.99999999999999999999",
      "1.",
      ".1"
    ),
    mutated([seeds.eventCursor]),
    hostileText
  )
  const eventTypes = fc.oneof(
    fc.array(fc.constantFrom(...Event.Type.literals), { maxLength: 4 }).map((types) => types.join(",")),
    fc
      .array(fc.oneof(fc.constantFrom(...Event.Type.literals), hostileText), { maxLength: 4 })
      .map((types) => types.join(","))
  )
  const feedRequest = query({
    after: eventCursor,
    types: eventTypes,
    limit: numberish,
    workspace_id: idText
  }).map((q): Sent => ({ method: "GET", path: `/api/events${q}`, headers: {}, shape: "feed" }))
  const webhookSegment = fc.oneof(
    { weight: 4, arbitrary: fc.constant(seeds.webhookId) },
    { weight: 1, arbitrary: mutated([seeds.webhookId]).map(encode) },
    { weight: 1, arbitrary: inUrl(hostileText) }
  )
  const deliverySegment = fc.oneof(
    { weight: 4, arbitrary: fc.constant(seeds.deliveryId) },
    { weight: 1, arbitrary: mutated([seeds.deliveryId]).map(encode) },
    { weight: 1, arbitrary: inUrl(hostileText) }
  )
  const webhookRequest = fc.oneof(
    bodies.webhooks.map((body): Sent => ({ method: "POST", path: "/api/webhooks", ...body })),
    query({ workspace_id: idText }).map(
      (q): Sent => ({ method: "GET", path: `/api/webhooks${q}`, headers: {} })
    ),
    webhookSegment.map((id): Sent => ({ method: "GET", path: `/api/webhooks/${id}`, headers: {} })),
    fc
      .oneof(
        fc.constant(seeds.webhookVictim),
        webhookSegment.filter((id) => id !== seeds.webhookId)
      )
      .map((id): Sent => ({ method: "DELETE", path: `/api/webhooks/${id}`, headers: {} })),
    fc
      .tuple(webhookSegment, bodies.webhookPatch)
      .map(([id, body]): Sent => ({ method: "PATCH", path: `/api/webhooks/${id}`, ...body })),
    fc.tuple(webhookSegment, bodies.rotation, fc.boolean()).map(
      ([id, body, empty]): Sent => ({
        method: "POST",
        path: `/api/webhooks/${id}/rotate-secret`,
        ...(empty ? { headers: {} } : body)
      })
    ),
    fc
      .tuple(webhookSegment, query({ before: fc.oneof(deliverySegment, hostileText), limit: numberish }))
      .map(([id, q]): Sent => ({ method: "GET", path: `/api/webhooks/${id}/deliveries${q}`, headers: {} })),
    fc.tuple(webhookSegment, deliverySegment).map(
      ([id, delivery]): Sent => ({
        method: "POST",
        path: `/api/webhooks/${id}/deliveries/${delivery}/redeliver`,
        headers: {}
      })
    ),
    webhookSegment.map((id): Sent => ({ method: "POST", path: `/api/webhooks/${id}/ping`, headers: {} }))
  )
  const strayRequest = fc
    .tuple(
      fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"),
      fc.oneof(
        fc.constantFrom(
          ...["/", "/api", "/api/", "/api/builds/", "/api//builds", "/API/builds", "/api/builds/x/y/z"],
          ...["/%2e%2e/api/builds", "/api/builds%2F", "/api/builds?", "/api/builds#x", "*"],
          ...["/api/openapi.json", "/api/docs", `/api/builds/${seeds.ids.builds[0]}/logs/stream`]
        ),
        inUrl(hostileText).map((text) => `/api/${text}`)
      )
    )
    .map(([method, path]): Sent => ({ method, path, headers: {} }))

  return fc
    .tuple(
      fc.oneof(
        { weight: 10, arbitrary: listRequest },
        { weight: 3, arbitrary: logsRequest },
        { weight: 3, arbitrary: getRequest },
        { weight: 1, arbitrary: revokeRequest },
        { weight: 6, arbitrary: createRequest },
        { weight: 2, arbitrary: cancelRequest },
        { weight: 2, arbitrary: uploadRequest },
        { weight: 3, arbitrary: feedRequest },
        { weight: 4, arbitrary: webhookRequest },
        { weight: 1, arbitrary: strayRequest }
      ),
      auth
    )
    .map(([sent, credentials]) => ({ ...sent, headers: { ...sent.headers, ...credentials } }))
}

// -----------------------------------------------------------------------------------------------------
// Sending and checking
// -----------------------------------------------------------------------------------------------------

const exchange = (server: URL, agent: Agent, sent: Sent) =>
  new Promise<Received>((resolve, reject) => {
    const outgoing = request(
      {
        host: server.hostname,
        port: server.port,
        method: sent.method,
        path: sent.path,
        headers: sent.chunked ? { ...sent.headers, "transfer-encoding": "chunked" } : sent.headers,
        agent
      },
      (response) => {
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("error", reject)
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            type: response.headers["content-type"] ?? "",
            text: Buffer.concat(chunks).toString("utf8")
          })
        )
      }
    )
    outgoing.on("error", reject)
    if (sent.chunked && sent.body !== undefined) outgoing.write(sent.body)
    outgoing.end(sent.chunked ? undefined : sent.body)
  })

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/**
 * Whether Node itself refuses the request before any route runs: a head near or past its size limit (431;
 * counted in UTF-8, as the client may send it, with room for the headers it adds), or a request line with
 * bytes outside printable ASCII (400).
 */
const refusedByNode = (sent: Sent) =>
  /[^\x21-\x7e]/.test(sent.path) ||
  Object.entries(sent.headers).reduce(
    (n, [name, value]) => n + Buffer.byteLength(`${name}: ${value}\r\n`),
    Buffer.byteLength(sent.path)
  ) >
    maxHead - 256

/** What is wrong with the reply (or the reason there was none), if anything. */
const problemOf = (sent: Sent, reply: Received | string): string | undefined => {
  // Node refuses these before any route runs and closes, possibly while the request is still going out.
  if (typeof reply === "string") return refusedByNode(sent) ? undefined : reply
  if (reply.status >= 500) return "a 5xx"
  const body = reply.type.includes("json") ? parse(reply.text) : undefined
  if (reply.status >= 400) {
    const ok =
      isRecord(body) &&
      typeof body.error === "string" &&
      typeof body.message === "string" &&
      Object.keys(body).every((key) => key === "error" || key === "message" || key === "details")
    return ok ? undefined : "a 4xx that is not {error, message, details?}"
  }
  if (reply.status >= 200 && reply.status < 300 && sent.shape === "page") {
    return isRecord(body) && Array.isArray(body.data) && isRecord(body.pageInfo)
      ? undefined
      : "a 2xx list that is not a page"
  }
  if (reply.status >= 200 && reply.status < 300 && sent.shape === "feed") {
    return isRecord(body) &&
      Array.isArray(body.data) &&
      (typeof body.cursor === "string" || body.cursor === null)
      ? undefined
      : "a 2xx feed page that is not one"
  }
  if (
    reply.status >= 200 &&
    reply.status < 300 &&
    sent.shape === "logs" &&
    !reply.type.startsWith("text/plain")
  ) {
    return isRecord(body) && Array.isArray(body.data) && typeof body.cursor === "string"
      ? undefined
      : "a 2xx log page that is not one"
  }
  return undefined
}

const clip = (text: string, max = 300) =>
  text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`

const describeBody = (sent: Sent) => {
  if (sent.body === undefined) return ""
  const text =
    typeof sent.body === "string"
      ? JSON.stringify(sent.body)
      : `<${sent.body.length} bytes> ${JSON.stringify(Buffer.from(sent.body).toString("latin1"))}`
  return ` body ${clip(text)}${sent.chunked ? " (chunked)" : ""}`
}

/** The request as a repro (long parts cut, with their length) and what came back. */
const describeExchange = (sent: Sent, reply: Received | string) => {
  const answer = typeof reply === "string" ? reply : `${reply.status} ${clip(reply.text, 200)}`
  return `${sent.method} ${clip(sent.path)} headers ${clip(JSON.stringify(sent.headers), 200)}${describeBody(sent)} → ${answer}`
}

// -----------------------------------------------------------------------------------------------------

let server: TestServer
let seeds: Seeds
beforeAll(async () => {
  server = await startServer()
  seeds = await seedData(server)
})
afterAll(() => server.close())

describe("http › fuzz", () => {
  it(`answers ${minRequests}+ random and hostile requests without a 5xx, in the API's own bodies`, async () => {
    const target = new URL(server.url)
    const agent = new Agent({ maxSockets: batch })
    const statuses = new Map<number | string, number>()
    // Collected, not thrown: one run reports every distinct failure, and always sends every request.
    const failures = new Map<string, { count: number; example: string }>()
    let sentCount = 0
    const one = async (sent: Sent) => {
      sentCount++
      const reply = await exchange(target, agent, sent).catch(
        (error: Error & { code?: string }) => `no reply: ${error.code ?? error.message}`
      )
      const status = typeof reply === "string" ? "no reply" : reply.status
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
      const problem = problemOf(sent, reply)
      if (problem === undefined) return
      const key = `${sent.method} ${sent.path.split(/[/?]/).slice(0, 3).join("/")}: ${problem}`
      const seen = failures.get(key)
      failures.set(key, {
        count: (seen?.count ?? 0) + 1,
        example: seen?.example ?? describeExchange(sent, reply)
      })
    }
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(requests(seeds), { minLength: batch, maxLength: batch }), async (sent) => {
          await Promise.all(sent.map(one))
        }),
        { seed, numRuns: runs }
      )
    } finally {
      agent.destroy()
    }
    const counts = [...statuses].sort(([a], [b]) => String(a).localeCompare(String(b)))
    console.log(`fuzz: ${sentCount} requests, statuses {${counts.map(([s, n]) => `${s}: ${n}`).join(", ")}}`)
    const report = [...failures].map(([key, { count, example }]) => `${key} (×${count}), e.g. ${example}`)
    expect(failures.size, report.join("\n\n")).toBe(0)
    expect(sentCount).toBeGreaterThanOrEqual(minRequests)
  }, 120_000)
})
