/**
 * The dashboard's sessions on the real server: a token exchanged for an HttpOnly, SameSite=Strict cookie
 * that then authenticates the API and the WebSockets like the token would; state-changing requests need the
 * CSRF header, WebSockets a same-origin page; a revoked or expired token ends the session; signing out
 * clears the cookie. Also the page and its files under `/ui/`, with the prefix a host mounts Kiln at.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startServer, type TestServer } from "./fixtures/server.ts"
import { openStream } from "./fixtures/websocket.ts"

let server: TestServer
let prefixed: TestServer
let workspace: string
beforeAll(async () => {
  ;[server, prefixed] = await Promise.all([
    startServer({ dashboard: true }),
    startServer({ dashboard: true, prefix: "/ci" })
  ])
  workspace = (await call(server, "POST", "/api/workspaces", { body: { name: "Acme" } })).body.id
})
afterAll(() => Promise.all([server?.close(), prefixed?.close()]))

/** A token over the workspace, made through the API. */
const tokenOf = async (role: string, expiresAt?: string) => {
  const made = await call(server, "POST", "/api/tokens", {
    body: { name: `${role} user`, workspaceIds: [workspace], role, ...(expiresAt ? { expiresAt } : {}) }
  })
  expect(made.status).toBe(201)
  return made.body as { id: string; token: string }
}

const signIn = async (token: string, headers: Record<string, string> = {}, base = server) => {
  const response = await fetch(`${base.url}/ui/session`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ token })
  })
  const setCookie = response.headers.get("set-cookie") ?? ""
  return {
    status: response.status,
    body: (await response.json()) as Record<string, unknown>,
    setCookie,
    cookie: setCookie.split(";")[0]!
  }
}

/** A request with the session cookie (and the CSRF header when given), as the page sends it. */
const withSession = (method: string, path: string, cookie: string, csrf?: string, body?: unknown) =>
  call(server, method, path, {
    token: undefined,
    headers: { cookie, ...(csrf === undefined ? {} : { "x-kiln-csrf": csrf }) },
    ...(body === undefined ? {} : { body })
  })

describe("dashboard sessions", () => {
  it("exchanges a token for an HttpOnly, SameSite=Strict cookie and tells the page its role and CSRF value", async () => {
    const { token } = await tokenOf("write")
    const signed = await signIn(token)
    expect(signed.status).toBe(200)
    expect(signed.body).toMatchObject({ role: "write", workspaceIds: [workspace], name: "write user" })
    expect(typeof signed.body.csrfToken).toBe("string")
    expect(signed.setCookie).toMatch(
      /^kiln_session=[^;]+; Max-Age=(?:43200|4319\d); Path=\/; HttpOnly; SameSite=Strict$/
    )
    // The cookie names the token; it is not the token.
    expect(signed.setCookie).not.toContain(token)
    expect((await withSession("GET", "/ui/session", signed.cookie)).body).toMatchObject({
      role: "write",
      csrfToken: signed.body.csrfToken
    })
  })

  it("refuses a wrong token and a malformed body, and marks the cookie Secure behind a TLS proxy", async () => {
    expect((await signIn("kiln_not-a-token")).status).toBe(401)
    const malformed = await fetch(`${server.url}/ui/session`, { method: "POST", body: "token=x" })
    expect(malformed.status).toBe(400)
    // Bounded like every body: a token field longer than any token, and a body past the 1 MiB cap.
    expect((await signIn("k".repeat(2000))).status).toBe(400)
    const huge = await fetch(`${server.url}/ui/session`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: "k".repeat(2 * 1024 * 1024) })
    })
    expect(huge.status).toBe(413)
    const { token } = await tokenOf("read")
    expect((await signIn(token, { "x-forwarded-proto": "https" })).setCookie).toMatch(/; Secure; /)
  })

  it("authenticates the API with the cookie; a change needs the CSRF header as well", async () => {
    const { token } = await tokenOf("write")
    const { cookie, body } = await signIn(token)
    const csrf = body.csrfToken as string
    expect((await withSession("GET", "/api/workspaces", cookie)).status).toBe(200)
    const app = { workspaceId: workspace, handle: `web-${Date.now()}`, name: "Web", kind: "app", build: {} }
    const refused = await withSession("POST", "/api/apps", cookie, undefined, app)
    expect([refused.status, refused.body.error]).toEqual([403, "forbidden"])
    expect(refused.body.message).toMatch(/x-kiln-csrf/)
    expect((await withSession("POST", "/api/apps", cookie, "wrong", app)).status).toBe(403)
    expect((await withSession("POST", "/api/apps", cookie, csrf, app)).status).toBe(201)
    // A forged or altered cookie is no session: another byte of the tag, or only its unused last bits.
    const flip = (value: string, at: number, from: string, to: string) =>
      value.slice(0, at) + (value[at] === from ? to : from) + value.slice(at + 1)
    for (const altered of [
      flip(cookie, cookie.length - 5, "A", "Q"),
      flip(cookie, cookie.length - 1, "A", "B")
    ]) {
      expect((await withSession("GET", "/api/workspaces", altered)).status).toBe(401)
    }
    expect((await withSession("GET", "/api/workspaces", "kiln_session=nonsense")).status).toBe(401)
  })

  it("ends with its token: revoked, the next request is a 401", async () => {
    const { id, token } = await tokenOf("read")
    const { cookie } = await signIn(token)
    expect((await withSession("GET", "/api/builds", cookie)).status).toBe(200)
    expect((await call(server, "DELETE", `/api/tokens/${id}`)).status).toBe(200)
    expect((await withSession("GET", "/api/builds", cookie)).status).toBe(401)
    expect((await withSession("GET", "/ui/session", cookie)).status).toBe(401)
  })

  it("lasts no longer than its token, and ends when the token expires", async () => {
    const { token } = await tokenOf("read", new Date(Date.now() + 2500).toISOString())
    const signed = await signIn(token)
    const maxAge = Number(/Max-Age=(\d+)/.exec(signed.setCookie)?.[1])
    expect(maxAge).toBeGreaterThanOrEqual(1)
    expect(maxAge).toBeLessThanOrEqual(3)
    await new Promise((resolve) => setTimeout(resolve, 3000))
    expect((await withSession("GET", "/api/builds", signed.cookie)).status).toBe(401)
  })

  it("signs out with the CSRF header, clearing the cookie", async () => {
    const { token } = await tokenOf("read")
    const { cookie, body } = await signIn(token)
    expect((await withSession("DELETE", "/ui/session", cookie)).status).toBe(403)
    const out = await fetch(`${server.url}/ui/session`, {
      method: "DELETE",
      headers: { cookie, "x-kiln-csrf": body.csrfToken as string }
    })
    expect(out.status).toBe(204)
    expect(out.headers.get("set-cookie")).toMatch(
      /^kiln_session=; Max-Age=0; Path=\/; HttpOnly; SameSite=Strict/
    )
  })

  it("opens the event feed's WebSocket with the cookie from a page of this origin only", async () => {
    const { token } = await tokenOf("read")
    const { cookie } = await signIn(token)
    const host = new URL(server.url).host
    const same = await openStream(server.url, "/api/events/stream", {
      headers: { cookie, origin: `http://${host}` }
    })
    expect("opened" in same).toBe(true)
    if ("opened" in same) same.opened.cut()
    const other = await openStream(server.url, "/api/events/stream", {
      headers: { cookie, origin: "https://evil.example" }
    })
    expect("refused" in other && other.refused.status).toBe(401)
    const none = await openStream(server.url, "/api/events/stream", { headers: { cookie } })
    expect("refused" in none && none.refused.status).toBe(401)
  })
})

describe("the dashboard and the rate limits", () => {
  it("serves the page and its files unlimited, and counts sign-ins against the address", async () => {
    const limited = await startServer({
      dashboard: true,
      rateLimit: { perAddress: { limit: 3, windowSeconds: 60 } }
    })
    try {
      for (let n = 0; n < 10; n++) expect((await fetch(`${limited.url}/ui/app.js`)).status).toBe(200)
      const tries = []
      for (let n = 0; n < 4; n++) tries.push((await signIn("kiln_guess", {}, limited)).status)
      expect(tries).toEqual([401, 401, 401, 429])
    } finally {
      await limited.close()
    }
  })
})

describe("the dashboard's page and files", () => {
  it("serves the page with the prefix it is mounted at, its scripts and the vendor builds, under a strict CSP", async () => {
    for (const [base, prefix] of [
      [server, ""],
      [prefixed, "/ci"]
    ] as const) {
      const page = await fetch(`${base.url}/ui/`)
      expect(page.status).toBe(200)
      expect(page.headers.get("content-type")).toMatch(/^text\/html/)
      expect(page.headers.get("content-security-policy")).toMatch(/default-src 'none'; script-src 'self'/)
      const html = await page.text()
      expect(html).toContain(`<base href="${prefix}/ui/" />`)
      expect(html).not.toContain("%KILN_")
      for (const file of [
        "boot.js",
        "app.js",
        "style.css",
        "vendor/preact.js",
        "vendor/preact-hooks.js",
        "vendor/htm.js",
        "vendor/ansi_up.js"
      ]) {
        const asset = await fetch(`${base.url}/ui/${file}`)
        expect([file, asset.status]).toEqual([file, 200])
      }
    }
    expect((await fetch(`${server.url}/ui/../package.json`)).status).toBe(404)
    expect((await fetch(`${server.url}/ui/nothing.js`)).status).toBe(404)
    // A cookie signed in under a prefix is scoped to it.
    expect((await signIn(prefixed.admin, {}, prefixed)).setCookie).toMatch(/; Path=\/ci\/; /)
  })
})
