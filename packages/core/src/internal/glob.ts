/**
 * The patterns triggers match branches and changed paths with. Deliberately small, so that what a
 * pattern matches is obvious from reading it:
 *
 * - `*` matches any run of characters, `/` included: `*` alone matches everything, `docs/*` every path
 *   under `docs/`, `release/*` every branch under `release/`, `*.md` every Markdown file anywhere;
 * - `?` matches exactly one character (one code point, `/` included);
 * - `\` makes the next character literal: `\*` is a star, `\\` a backslash;
 * - every other character matches itself, case-sensitively, and the whole name must match.
 *
 * There are no character classes, braces or negations. Matching takes time proportional to the
 * pattern's length times the name's at worst, whatever the pattern: no pattern can stall a push.
 */

type Token =
  | { readonly _tag: "Star" }
  | { readonly _tag: "One" }
  | { readonly _tag: "Char"; readonly char: string }

export interface Glob {
  readonly pattern: string
  readonly matches: (name: string) => boolean
}

const tokenize = (pattern: string): ReadonlyArray<Token> => {
  const tokens: Array<Token> = []
  const chars = Array.from(pattern)
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i]!
    if (char === "*") {
      // A run of stars matches what one star does.
      if (tokens[tokens.length - 1]?._tag !== "Star") tokens.push({ _tag: "Star" })
    } else if (char === "?") {
      tokens.push({ _tag: "One" })
    } else if (char === "\\" && i + 1 < chars.length) {
      tokens.push({ _tag: "Char", char: chars[++i]! })
    } else {
      tokens.push({ _tag: "Char", char })
    }
  }
  return tokens
}

/**
 * Greedy matching that backtracks only to the last star: a later star can cover anything an earlier
 * one would have had to, so earlier choices never need revisiting.
 */
const matchTokens = (tokens: ReadonlyArray<Token>, name: ReadonlyArray<string>): boolean => {
  let t = 0
  let n = 0
  let star = -1
  let resume = 0
  while (n < name.length) {
    const token = tokens[t]
    if (token !== undefined && (token._tag === "One" || (token._tag === "Char" && token.char === name[n]))) {
      t++
      n++
    } else if (token?._tag === "Star") {
      star = t++
      resume = n
    } else if (star !== -1) {
      t = star + 1
      n = ++resume
    } else {
      return false
    }
  }
  while (tokens[t]?._tag === "Star") t++
  return t === tokens.length
}

export const make = (pattern: string): Glob => {
  const tokens = tokenize(pattern)
  return { pattern, matches: (name) => matchTokens(tokens, Array.from(name)) }
}

/** The first of `patterns` that matches `name`, if any. */
export const firstMatch = (patterns: ReadonlyArray<string>, name: string): string | undefined =>
  patterns.find((pattern) => make(pattern).matches(name))
