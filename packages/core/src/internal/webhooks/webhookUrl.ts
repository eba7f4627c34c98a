/**
 * Whether a client's URL may be a webhook endpoint, judged when it is saved. An IP literal is judged by
 * the address policy in the form WHATWG URL reads it, which is the form the sender connects to:
 * `http://2130706433/`, `http://0x7f.1/` and `http://127.1/` all mean 127.0.0.1. A name is judged when
 * the delivery connects, on every address it resolves to.
 */
import { isIP } from "node:net"
import { Result } from "effect"
import type { AddressPolicy } from "./addressPolicy.ts"

export const maxLength = 2048

/** The URL to store and send to (normalized), or a message saying what is wrong with it. */
export const check = (url: string, policy: AddressPolicy): Result.Result<URL, string> => {
  if (url.length > maxLength) return Result.fail(`a webhook URL is at most ${maxLength} characters`)
  // WHATWG URL refuses an http(s) URL without a host, so a parsed one always has one.
  const parsed = URL.parse(url)
  if (parsed === null || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    return Result.fail("expected an http:// or https:// URL with a host")
  }
  if (parsed.username !== "" || parsed.password !== "") {
    return Result.fail("a webhook URL carries no user name or password")
  }
  const host = hostOf(parsed)
  const refusal = isIP(host) === 0 ? undefined : policy.check(host)
  return refusal === undefined ? Result.succeed(parsed) : Result.fail(refusal.message)
}

/** The host to resolve or connect to: an IPv6 literal without its brackets. */
export const hostOf = (url: URL): string =>
  url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname
