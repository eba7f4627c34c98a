/**
 * A git server for tests: the repositories under a directory, served over git's smart HTTP by
 * `git http-backend` (as CGI) on 127.0.0.1 and an ephemeral port. Tests fetch their repositories as a
 * remote like any other, offline, instead of pointing Kiln at the disk. `redirects` answers the paths
 * under a prefix with a 302 to another place, to see where git may be led. `commit` makes the
 * repositories to serve.
 */
import { execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { dirname, join } from "node:path"

export interface GitServer {
  /** `http://127.0.0.1:<port>`: the repository at `<root>/<path>` is at `${url}/<path>`. */
  readonly url: string
  /** Stops listening, ends open connections, and settles once the server is closed. */
  readonly close: () => Promise<void>
}

export interface Options {
  /**
   * Path prefix → URL: a request under the prefix is answered with a redirect to the URL followed by the
   * rest of its path and its query, e.g. `{ "/moved": "file:///srv/repo" }`.
   */
  readonly redirects?: Readonly<Record<string, string>>
}

/** Serves every repository under `root` (working trees and bare ones), read-only. */
export const start = async (root: string, options: Options = {}): Promise<GitServer> => {
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://127.0.0.1")
    for (const [prefix, target] of Object.entries(options.redirects ?? {})) {
      if (url.pathname === prefix || url.pathname.startsWith(`${prefix}/`)) {
        response.writeHead(302, { location: `${target}${url.pathname.slice(prefix.length)}${url.search}` })
        response.end()
        return
      }
    }
    backend(root, url, request, response)
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", resolve)
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}

/**
 * Commits `files` (path → content) to the repository at `directory`, made first (branch `main`) when it
 * is not one yet, and answers the commit's sha.
 */
export const commit = (
  directory: string,
  files: Readonly<Record<string, string>>,
  message = "files"
): string => {
  const git = (...args: ReadonlyArray<string>) =>
    execFileSync("git", ["-c", "user.name=Kiln Tests", "-c", "user.email=tests@kiln.invalid", ...args], {
      cwd: directory,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"]
    }).trim()
  mkdirSync(directory, { recursive: true })
  if (!existsSync(join(directory, ".git"))) git("init", "--quiet", "--initial-branch=main")
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(directory, path)), { recursive: true })
    writeFileSync(join(directory, path), content)
  }
  git("add", "--all")
  git("commit", "--quiet", "--allow-empty", "-m", message)
  return git("rev-parse", "HEAD")
}

/** One request through `git http-backend`: the request's headers become CGI variables, its body stdin. */
const backend = (root: string, url: URL, request: IncomingMessage, response: ServerResponse) => {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(request.headers)) {
    if (typeof value === "string") headers[`HTTP_${name.toUpperCase().replaceAll("-", "_")}`] = value
  }
  const cgi = spawn("git", ["http-backend"], {
    stdio: ["pipe", "pipe", "ignore"],
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      ...headers,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: "1",
      REQUEST_METHOD: request.method ?? "GET",
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: request.headers["content-type"] ?? "",
      REMOTE_ADDR: request.socket.remoteAddress ?? "127.0.0.1"
    }
  })
  cgi.on("error", () => response.destroy())
  request.pipe(cgi.stdin).on("error", () => undefined)
  // CGI output: header lines (`Status: 404 Not Found` among them), a blank line, then the body.
  let head = Buffer.alloc(0)
  let body = false
  cgi.stdout.on("data", (chunk: Buffer) => {
    if (body) {
      response.write(chunk)
      return
    }
    head = Buffer.concat([head, chunk])
    const end = head.indexOf("\r\n\r\n")
    if (end === -1) return
    body = true
    let status = 200
    for (const line of head.subarray(0, end).toString("latin1").split("\r\n")) {
      const colon = line.indexOf(":")
      const name = line.slice(0, colon).trim()
      const value = line.slice(colon + 1).trim()
      if (name.toLowerCase() === "status") status = Number.parseInt(value, 10)
      else response.setHeader(name, value)
    }
    response.writeHead(status)
    response.write(head.subarray(end + 4))
  })
  cgi.stdout.on("end", () => {
    if (!body) response.writeHead(502)
    response.end()
  })
}
