/**
 * Rate limits, per process: a fixed window of `windowSeconds` per key, `limit` requests in each. A request
 * with a token Kiln accepts counts against its token; any other (no token, one it refuses, a push, a log
 * ticket) against the client's address, so guessing tokens is limited too. Answers are described with the
 * IETF `RateLimit-Policy` and `RateLimit` fields (`"token";q=600;w=60` and `"token";r=599;t=42`).
 *
 * Memory is bounded: at most `maxKeys` windows are kept; past that the oldest window is dropped (its key
 * starts afresh), which favours a caller that spreads requests over many addresses only as far as those
 * addresses each get a fresh window.
 */

export interface Policy {
  /** Requests allowed in each window. */
  readonly limit: number
  readonly windowSeconds: number
}

export interface Options {
  /** Requests made with a token Kiln accepts, per token (default 6,000 a minute); `false` for none. */
  readonly perToken?: Policy | false | undefined
  /** Every other request, per client address (default 600 a minute); `false` for none. */
  readonly perAddress?: Policy | false | undefined
  /** The most windows kept at once (default 100,000). */
  readonly maxKeys?: number | undefined
}

export const defaults = {
  perToken: { limit: 6000, windowSeconds: 60 },
  perAddress: { limit: 600, windowSeconds: 60 }
} as const

export type Kind = "token" | "address"

export interface Verdict {
  readonly allowed: boolean
  /** The `RateLimit-Policy` and `RateLimit` fields, and `Retry-After` when refused. */
  readonly headers: Readonly<Record<string, string>>
}

interface Window {
  readonly startsAt: number
  count: number
}

export interface Limiter {
  /** Counts a request of `key` at `now` (ms); `undefined` when its kind has no limit. */
  readonly count: (kind: Kind, key: string, now: number) => Verdict | undefined
}

const invalid = (name: string, policy: Policy) =>
  !Number.isInteger(policy.limit) || policy.limit < 1 || !(policy.windowSeconds > 0)
    ? `rate limit ${name}: limit must be a whole number ≥ 1 and windowSeconds > 0, not ${JSON.stringify(policy)}`
    : undefined

/** A limiter for `options`, or the reason they are not valid. */
export const make = (options: Options = {}): Limiter | string => {
  const policies: Record<Kind, Policy | false> = {
    token: options.perToken ?? defaults.perToken,
    address: options.perAddress ?? defaults.perAddress
  }
  for (const kind of ["token", "address"] as const) {
    const policy = policies[kind]
    const problem = policy === false ? undefined : invalid(`per ${kind}`, policy)
    if (problem !== undefined) return problem
  }
  const maxKeys = options.maxKeys ?? 100_000
  const windows = new Map<string, Window>()
  return {
    count: (kind, key, now) => {
      const policy = policies[kind]
      if (policy === false) return undefined
      const windowMs = policy.windowSeconds * 1000
      const id = `${kind}:${key}`
      let window = windows.get(id)
      if (window === undefined || now >= window.startsAt + windowMs) {
        windows.delete(id)
        if (windows.size >= maxKeys) windows.delete(windows.keys().next().value!)
        window = { startsAt: now, count: 0 }
        // Reinserted, so the map's order is the windows' age: the oldest is dropped first.
        windows.set(id, window)
      }
      window.count += 1
      const allowed = window.count <= policy.limit
      const reset = Math.max(1, Math.ceil((window.startsAt + windowMs - now) / 1000))
      const headers: Record<string, string> = {
        "ratelimit-policy": `"${kind}";q=${policy.limit};w=${policy.windowSeconds}`,
        ratelimit: `"${kind}";r=${Math.max(0, policy.limit - window.count)};t=${reset}`
      }
      if (!allowed) headers["retry-after"] = String(reset)
      return { allowed, headers }
    }
  }
}
