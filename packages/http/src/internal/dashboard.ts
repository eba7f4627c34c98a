/**
 * The web dashboard (`KilnHttp.layer({ dashboard: true })`): its page and scripts under `/ui/`, served from
 * the files shipped in this package (`assets/dashboard/`) and the browser builds of the few libraries it
 * uses (Preact, htm, ansi_up) from its dependencies, so it works offline, with no CDN and no build step for
 * the host; and its sessions (`/ui/session`): a token exchanged for the session cookie, read back, ended.
 *
 * The page is same-origin with the API under the host's prefix, which it is told in the HTML. A strict
 * Content-Security-Policy allows scripts, styles and connections to this origin only.
 */
import { createHash } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Access, Authenticator, Storage } from "@kiln/core"
import { DateTime, Effect, Schema } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as ApiError from "../ApiError.ts"
import { respond } from "./responses.ts"
import * as Sessions from "./sessions.ts"

export const dashboardPath = "/ui"
export const sessionPath = "/ui/session"

const assets = fileURLToPath(new URL("../../assets/dashboard/", import.meta.url))

/** A package's directory, found from its entry point: packages do not all export their package.json. */
const packageRoot = (name: string) => {
  let dir = dirname(createRequire(import.meta.url).resolve(name))
  while (!dir.endsWith(`node_modules/${name}`) && dirname(dir) !== dir) dir = dirname(dir)
  return dir
}

/** The browser (ES module) builds of the libraries the page imports, by the name it asks for. */
const vendor = (): Record<string, string> => {
  const preact = packageRoot("preact")
  return {
    "preact.js": join(preact, "dist/preact.module.js"),
    "preact-hooks.js": join(preact, "hooks/dist/hooks.module.js"),
    "htm.js": join(packageRoot("htm"), "dist/htm.module.js"),
    "ansi_up.js": join(packageRoot("ansi_up"), "ansi_up.js")
  }
}

const types: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png"
}
const typeOf = (file: string) => types[file.slice(file.lastIndexOf("."))] ?? "application/octet-stream"

/**
 * Scripts, styles and connections of this origin only; the page's one inline script, its import map, is
 * allowed by its hash (browsers take no import map from a file).
 */
const securityHeaders = (index: string) => {
  const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(index)?.[1]
  const hash =
    importMap === undefined ? "" : ` 'sha256-${createHash("sha256").update(importMap).digest("base64")}'`
  return {
    "content-security-policy":
      `default-src 'none'; script-src 'self'${hash}; style-src 'self'; img-src 'self' data:; ` +
      "connect-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer"
  }
}

/** Every file the dashboard serves, read once: the shipped assets and the vendor builds. */
const load = () => {
  const files = new Map<string, Uint8Array>()
  for (const file of readdirSync(assets))
    if (file !== "index.html") files.set(file, readFileSync(join(assets, file)))
  for (const [name, path] of Object.entries(vendor())) files.set(`vendor/${name}`, readFileSync(path))
  return { files, index: readFileSync(join(assets, "index.html"), "utf8") }
}

const SignIn = Schema.Struct({ token: Schema.String.check(Schema.isMaxLength(1024)) })
const decodeSignIn = Schema.decodeUnknownEffect(Schema.fromJsonString(SignIn))

/** What the page is told of its session. */
const sessionView = (principal: Authenticator.Principal, csrfToken: string, expiresAt: DateTime.Utc) => ({
  name: principal.name,
  role: principal.role,
  workspaceIds: principal.access._tag === "All" ? "*" : [...principal.access.ids],
  csrfToken,
  expiresAt: DateTime.formatIso(expiresAt)
})

/** The dashboard's routes, for a Kiln mounted at `prefix` ("" at the root). */
export const route = (prefix: string) =>
  HttpRouter.use((router) =>
    Effect.gen(function* () {
      const storage = yield* Storage.Storage
      const authenticator = yield* Authenticator.Authenticator
      const { files, index } = load()
      const headers = securityHeaders(index)
      const page = index
        .replaceAll("%KILN_BASE%", `${prefix}${dashboardPath}/`)
        .replaceAll("%KILN_API%", prefix)
      const cookiePath = `${prefix}/`

      /** The session cookie, Secure when the page was reached over TLS (a proxy's X-Forwarded-Proto). */
      const withCookie = (response: HttpServerResponse.HttpServerResponse, value: string, maxAgeMs: number) =>
        Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
          HttpServerResponse.setCookieUnsafe(response, Sessions.cookieName, value, {
            httpOnly: true,
            sameSite: "strict",
            path: cookiePath,
            secure: request.headers["x-forwarded-proto"]?.split(",")[0]?.trim() === "https",
            maxAge: `${Math.max(0, Math.floor(maxAgeMs / 1000))} seconds`
          })
        )

      const html = HttpServerResponse.text(page, {
        contentType: types[".html"]!,
        headers: { ...headers, "cache-control": "no-store" }
      })
      yield* router.add(
        "GET",
        `${dashboardPath}/*`,
        Effect.gen(function* () {
          const request = yield* HttpServerRequest.HttpServerRequest
          const path = new URL(request.url, "http://kiln").pathname
          const name = path.slice(path.indexOf(dashboardPath) + dashboardPath.length + 1)
          // `/ui` and `/ui/` are the page: the router registers both with the wildcard.
          if (name === "" || name === "index.html") return html
          const body = files.get(name)
          if (body === undefined) return yield* respond(ApiError.NotFound.of(`no dashboard file ${name}`))
          return HttpServerResponse.uint8Array(body, {
            contentType: typeOf(name),
            headers: { ...headers, "cache-control": "no-cache" }
          })
        })
      )

      yield* router.add(
        "POST",
        sessionPath,
        Effect.gen(function* () {
          const request = yield* HttpServerRequest.HttpServerRequest
          const { token } = yield* Effect.flatMap(request.text, decodeSignIn).pipe(
            Effect.mapError(() =>
              ApiError.badRequest("invalid_request", 'expected {"token": "<a Kiln token>"}')
            )
          )
          const principal = yield* authenticator.authenticate(token).pipe(
            Effect.catchTags({
              Unauthenticated: () => Effect.fail(ApiError.Unauthorized.instance),
              StorageError: Effect.die
            })
          )
          const expiresAt =
            principal.tokenId === null
              ? null
              : (yield* Effect.orDie(storage.getToken(Access.all, principal.tokenId))).expiresAt
          const issued = yield* Sessions.issue(principal, expiresAt)
          const now = DateTime.toEpochMillis(yield* DateTime.now)
          return yield* withCookie(
            HttpServerResponse.jsonUnsafe(sessionView(principal, issued.csrfToken, issued.expiresAt), {
              headers: { "cache-control": "no-store" }
            }),
            issued.session,
            DateTime.toEpochMillis(issued.expiresAt) - now
          )
        }).pipe(Effect.catch(respond))
      )
      yield* router.add(
        "GET",
        sessionPath,
        Effect.gen(function* () {
          const session = Sessions.sessionOf(yield* HttpServerRequest.HttpServerRequest)
          if (session === undefined) return yield* ApiError.Unauthorized.instance
          const { principal, expiresAt } = yield* Sessions.redeem(storage, session)
          return HttpServerResponse.jsonUnsafe(
            sessionView(principal, yield* Sessions.csrfOf(session), expiresAt),
            {
              headers: { "cache-control": "no-store" }
            }
          )
        }).pipe(Effect.catch(respond))
      )
      yield* router.add(
        "DELETE",
        sessionPath,
        Effect.gen(function* () {
          const request = yield* HttpServerRequest.HttpServerRequest
          const session = Sessions.sessionOf(request)
          if (session !== undefined) yield* Sessions.checkCsrf(request, session)
          return yield* withCookie(HttpServerResponse.empty({ status: 204 }), "", 0)
        }).pipe(Effect.catch(respond))
      )
    })
  )
