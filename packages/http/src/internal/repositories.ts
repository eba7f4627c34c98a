/**
 * A repository as the accounts dialect names it, read from the URL Kiln builds it from. Kiln keeps no
 * connections to source hosts: a trigger's connection is its URL, so everything the dialect shows of one
 * (`repo_connection`, `repo_name`, `provider_*`) is derived here, the same way for every view.
 */
import { createHash } from "node:crypto"

export interface Repository {
  /** The URL without its credentials: what Kiln knows the repository by. */
  readonly id: string
  /** `owner/repo` as source hosts write it (a group path where hosts nest them), without `.git`. */
  readonly name: string
  /** What comes before the repository's own name: its user, organisation or group ("" for none). */
  readonly owner: string
  /** `github` and `gitlab` for those hosts, `git` for any other. */
  readonly providerType: string
}

const schemeUrl = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//
const userinfo = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#@]*@/
/** `[user@]host:path`, the form git reads as ssh. */
const scpLike = /^(?:[^@/]+@)?([^:/]+):(.*)$/

const providers: Readonly<Record<string, string>> = { "github.com": "github", "gitlab.com": "gitlab" }

export const repositoryOf = (url: string): Repository => {
  let host = ""
  let path = url
  if (schemeUrl.test(url)) {
    const parsed = URL.parse(url)
    host = parsed?.hostname ?? ""
    path = parsed?.pathname ?? ""
  } else {
    const scp = scpLike.exec(url)
    if (scp !== null) {
      host = scp[1]!
      path = scp[2]!
    }
  }
  const segments = path.split("/").filter((segment) => segment !== "")
  const repo = (segments.pop() ?? "").replace(/\.git$/, "")
  const owner = segments.join("/")
  return {
    // A token in the URL is a credential: no view shows it.
    id: url.replace(userinfo, "$1"),
    name: owner === "" ? repo : `${owner}/${repo}`,
    owner,
    providerType: providers[host.toLowerCase()] ?? "git"
  }
}

/**
 * The UUID of an account's connection to a repository: the same for every trigger of the account on that
 * URL, different in another account (name-based, from SHA-256, as RFC 9562's version 8 allows).
 */
export const connectionUuid = (accountId: string, repository: Repository): string => {
  const hex = createHash("sha256").update(`${accountId}\n${repository.id}`).digest("hex")
  const variant = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}
