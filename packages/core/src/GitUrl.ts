/**
 * Which git sources Kiln hands to git: remote URLs in the forms named by `expected`, and local
 * repositories only inside directories the host allows (none unless it says so). The checks read the
 * text alone, never the disk, so no answer can tell a client whether a path exists; and what they let
 * through cannot be read by git as an option, a remote helper (`ext::`) or a revision expression.
 */
import { posix } from "node:path"

/** The remote forms, as a refusal says them. */
export const expected = "expected an https://, http://, ssh:// or git@host:path URL"

/** What a refusal says when the host allows local repositories. */
const expectedOrLocal = `${expected}, or a local repository in a directory this server allows`

/** Lower case only: git takes `HTTPS://` for the name of a remote helper. Captures the authority. */
const remote = /^(?:https?|ssh):\/\/([^/?#]*)/
/** `user@host:path`, which git reads as ssh; a `/` before the `:` would make it a local path. */
const scpLike = /^[A-Za-z0-9._~][A-Za-z0-9._~-]*@[A-Za-z0-9][A-Za-z0-9.-]*:[^-]/

/**
 * The problem with `url` as a git source, or undefined when git may fetch from it. `localDirectories`
 * are absolute paths: a local path (or `file:///` URL) is accepted only at or below one of them, written
 * without `.` or `..` segments, so what the check compares is what git opens.
 */
export const check = (url: string, localDirectories: ReadonlyArray<string> = []): string | undefined => {
  const refused = localDirectories.length === 0 ? expected : expectedOrLocal
  // Spaces, control characters and backslashes belong in no git URL; a leading dash would be an option.
  if (url === "" || url.length > 2048 || /[\s\p{Cc}\\]/u.test(url) || url.startsWith("-")) return refused
  const authority = remote.exec(url)?.[1]
  if (authority !== undefined) {
    const at = authority.lastIndexOf("@")
    const host = authority.slice(at + 1)
    // ssh would take a user or host `-oProxyCommand=…` for an option of its own.
    const bad = host === "" || /^[-:]/.test(host) || authority.startsWith("-") || URL.parse(url) === null
    return bad ? refused : undefined
  }
  if (scpLike.test(url)) return undefined
  const path = localPath(url)
  return path !== undefined && localDirectories.some((directory) => isInside(path, directory))
    ? undefined
    : refused
}

/** The problem with `ref` as the branch, tag or commit to fetch, or undefined when it is one. */
export const checkRef = (ref: string): string | undefined =>
  // No option (`--upload-pack=…`), refspec (`+a:b`), revision expression (`HEAD~1`) or pattern.
  /^[^-+\s\p{Cc}~^:?*[\\][^\s\p{Cc}~^:?*[\\]*$/u.test(ref) && ref.length <= 255
    ? undefined
    : 'expected a branch, tag or commit: no leading "-" or "+", no spaces, no ~ ^ : ? * [ or \\'

/** The absolute path an absolute path or `file:///` URL names, as git reads it (decoded). */
const localPath = (url: string): string | undefined => {
  if (url.startsWith("/")) return url
  if (!url.startsWith("file:///")) return undefined
  try {
    const path = decodeURIComponent(url.slice("file://".length))
    return /\p{Cc}/u.test(path) ? undefined : path
  } catch {
    return undefined
  }
}

/** Whether `path` is `directory` or below it, with no segment that could lead out again. */
const isInside = (path: string, directory: string) => {
  const trimmed = path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path
  if (posix.normalize(trimmed) !== trimmed) return false
  const base = directory.endsWith("/") ? directory.slice(0, -1) : directory
  return trimmed === base || trimmed.startsWith(`${base}/`)
}
