import { describe, expect, it } from "@effect/vitest"
import { Id, Trigger } from "@kiln/core"
import { DateTime } from "effect"
import fc from "fast-check"
import * as Glob from "../src/internal/glob.ts"

/** The same semantics through a regular expression: fine as an oracle on short names. */
const viaRegExp = (pattern: string, name: string) => {
  let source = ""
  const chars = Array.from(pattern)
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i]!
    if (char === "*") source += "[\\s\\S]*"
    else if (char === "?") source += "[\\s\\S]"
    else if (char === "\\" && i + 1 < chars.length)
      source += chars[++i]!.replace(/[.*+?^${}()|[\]\\/-]/gu, "\\$&")
    else source += char.replace(/[.*+?^${}()|[\]\\/-]/gu, "\\$&")
  }
  return new RegExp(`^${source}$`, "u").test(name)
}

describe("Glob", () => {
  it.each([
    ["*", "", true],
    ["*", "src/deep/file.ts", true],
    ["main", "main", true],
    ["main", "mainline", false],
    ["Main", "main", false],
    ["release/*", "release/1.2", true],
    ["release/*", "release/1.2/hotfix", true],
    ["release/*", "releases/1.2", false],
    ["docs/*", "docs/guide/intro.md", true],
    ["docs/*", "README.md", false],
    ["*.md", "docs/guide/intro.md", true],
    ["*.md", "intro.mdx", false],
    ["v?", "v1", true],
    ["v?", "v10", false],
    ["a?c", "a/c", true],
    ["\\*", "*", true],
    ["\\*", "x", false],
    ["file\\?", "file?", true],
    ["**/test/*", "packages/core/test/x.ts", true],
    ["🚀?", "🚀🚀", true],
    ["", "", true],
    ["", "x", false]
  ])("%j matches %j: %s", (pattern, name, expected) => {
    expect(Glob.make(pattern).matches(name)).toBe(expected)
  })

  it("agrees with a regular expression on random patterns and names", () => {
    const alphabet = fc.constantFrom("a", "b", "/", "*", "?", "\\", "é")
    fc.assert(
      fc.property(
        fc.array(alphabet, { maxLength: 8 }).map((c) => c.join("")),
        fc.array(fc.constantFrom("a", "b", "/", "*", "é"), { maxLength: 10 }).map((c) => c.join("")),
        (pattern, name) => {
          expect(Glob.make(pattern).matches(name)).toBe(viaRegExp(pattern, name))
        }
      ),
      { numRuns: 5000 }
    )
  })

  it("answers a pattern built to backtrack without stalling", () => {
    const pattern = `${"*a".repeat(40)}b`
    expect(Glob.make(pattern).matches("a".repeat(5000))).toBe(false)
  })
})

const rules = (overrides: Partial<Trigger.Rules> = {}): Trigger.Rules => ({
  repository: null,
  branchIncludes: [],
  branchExcludes: [],
  pathIncludes: [],
  pathExcludes: [],
  deletedAt: null,
  ...overrides
})

const push = (overrides: Partial<Trigger.Push> = {}): Trigger.Push => ({
  repository: "https://git.example.com/acme/web.git",
  branch: "main",
  changedPaths: ["src/index.ts"],
  ...overrides
})

describe("Trigger.evaluate", () => {
  it.each<[string, Partial<Trigger.Rules>, Partial<Trigger.Push>, Trigger.Decision["_tag"], string?]>([
    ["no rules: every push builds", {}, {}, "Build"],
    ["an included branch", { branchIncludes: ["main"] }, {}, "Build"],
    [
      "a branch outside the includes",
      { branchIncludes: ["main"] },
      { branch: "dev" },
      "Ignore",
      "not included"
    ],
    ["a wildcard include", { branchIncludes: ["release/*"] }, { branch: "release/2" }, "Build"],
    [
      "an exclude beats an include",
      { branchIncludes: ["*"], branchExcludes: ["dependabot/*"] },
      { branch: "dependabot/npm" },
      "Ignore",
      'excluded by "dependabot/*"'
    ],
    [
      "a push with no branch, when branches are named",
      { branchIncludes: ["main"] },
      { branch: null },
      "Ignore"
    ],
    ["a push with no branch, when they are not", {}, { branch: null }, "Build"],
    [
      "another repository",
      { repository: "https://git.example.com/acme/api.git" },
      {},
      "Ignore",
      "not https://git.example.com/acme/api.git"
    ],
    ["the default path includes", {}, { changedPaths: ["a/b/c.txt"] }, "Build"],
    ["an included path", { pathIncludes: ["src/*"] }, {}, "Build"],
    [
      "no included path",
      { pathIncludes: ["src/*"] },
      { changedPaths: ["docs/a.md"] },
      "Skip",
      "no changed path matches"
    ],
    [
      "every path excluded",
      { pathExcludes: ["*.md"] },
      { changedPaths: ["README.md", "docs/a.md"] },
      "Skip",
      "all 2 changed paths are excluded"
    ],
    [
      "one path excluded, one not",
      { pathExcludes: ["*.md"] },
      { changedPaths: ["README.md", "src/a.ts"] },
      "Build"
    ],
    [
      "excludes are checked first: the path that is left is not included",
      { pathIncludes: ["src/*", "docs/*"], pathExcludes: ["docs/*"] },
      { changedPaths: ["docs/a.md", "test/a.ts"] },
      "Skip",
      "no changed path matches"
    ],
    ["no changed paths listed", { pathIncludes: ["src/*"] }, { changedPaths: [] }, "Build"],
    ["a deleted trigger", { deletedAt: new Date(0) as never }, {}, "Ignore", "deleted"]
  ])("%s", (_, trigger, event, tag, reason) => {
    const decision = Trigger.evaluate(rules(trigger), push(event))
    expect(decision._tag).toBe(tag)
    if (reason !== undefined) expect(decision).toMatchObject({ reason: expect.stringContaining(reason) })
  })

  const pattern = fc
    .array(fc.constantFrom("a", "b", "/", "*", "?"), { minLength: 1, maxLength: 4 })
    .map((c) => c.join(""))
  const name = fc.array(fc.constantFrom("a", "b", "/"), { maxLength: 6 }).map((c) => c.join(""))
  const arbitraryRules = fc.record({
    repository: fc.constant(null),
    branchIncludes: fc.array(pattern, { maxLength: 3 }),
    branchExcludes: fc.array(pattern, { maxLength: 3 }),
    pathIncludes: fc.array(pattern, { maxLength: 3 }),
    pathExcludes: fc.array(pattern, { maxLength: 3 }),
    deletedAt: fc.constant(null)
  })
  const arbitraryPush = fc.record({
    repository: fc.constant("r"),
    branch: fc.option(name, { nil: null }),
    changedPaths: fc.array(name, { maxLength: 5 })
  })

  it("never builds a push whose branch matches an exclude, nor one whose every changed path does", () => {
    fc.assert(
      fc.property(arbitraryRules, arbitraryPush, (trigger, event) => {
        const decision = Trigger.evaluate(trigger, event)
        const branchExcluded =
          event.branch !== null && trigger.branchExcludes.some((p) => Glob.make(p).matches(event.branch!))
        const pathsExcluded =
          event.changedPaths.length > 0 &&
          event.changedPaths.every((path) => trigger.pathExcludes.some((p) => Glob.make(p).matches(path)))
        if (branchExcluded) expect(decision._tag).toBe("Ignore")
        if (pathsExcluded) expect(decision._tag).not.toBe("Build")
      }),
      { numRuns: 3000 }
    )
  })

  it("never turns a push into a build by adding an exclude", () => {
    fc.assert(
      fc.property(arbitraryRules, arbitraryPush, pattern, fc.boolean(), (trigger, event, extra, onBranch) => {
        const before = Trigger.evaluate(trigger, event)
        const after = Trigger.evaluate(
          onBranch
            ? { ...trigger, branchExcludes: [...trigger.branchExcludes, extra] }
            : { ...trigger, pathExcludes: [...trigger.pathExcludes, extra] },
          event
        )
        if (before._tag !== "Build") expect(after._tag).not.toBe("Build")
      }),
      { numRuns: 3000 }
    )
  })
})

describe("Trigger environment variables", () => {
  const id = (prefix: "trg" | "wsp" | "app") =>
    Id.fromUuid(prefix, "0190b3a0-0000-7000-8000-000000000001") as never
  const at = (ms: number) => DateTime.makeUnsafe(ms)

  it("records when each variable was first set, and keeps it while the name stays", () => {
    const made = Trigger.make(
      id("trg"),
      id("wsp"),
      Trigger.input(id("app"), "main", {
        // Whatever a caller says, the time is the trigger's.
        environment: [{ name: "MODE", secret: false, value: "a", createdAt: "1999-01-01T00:00:00.000Z" }]
      }),
      at(1_000)
    )
    expect(made.environment).toEqual([
      { name: "MODE", secret: false, value: "a", createdAt: "1970-01-01T00:00:01.000Z" }
    ])
    const updated = Trigger.update(
      made,
      {
        environment: [
          { name: "MODE", secret: false, value: "b" },
          { name: "TOKEN", secret: true }
        ]
      },
      at(2_000)
    )
    expect(updated.environment).toEqual([
      { name: "MODE", secret: false, value: "b", createdAt: "1970-01-01T00:00:01.000Z" },
      { name: "TOKEN", secret: true, createdAt: "1970-01-01T00:00:02.000Z" }
    ])
    // Other changes leave the variables as they are; removed and set again, a variable is new.
    expect(Trigger.update(updated, { name: "renamed" }, at(3_000)).environment).toEqual(updated.environment)
    const removed = Trigger.update(updated, { environment: [] }, at(3_000))
    expect(
      Trigger.update(removed, { environment: [{ name: "MODE", secret: false }] }, at(4_000)).environment
    ).toEqual([{ name: "MODE", secret: false, createdAt: "1970-01-01T00:00:04.000Z" }])
  })
})
