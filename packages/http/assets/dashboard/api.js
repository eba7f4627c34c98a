/**
 * Talking to the server: where the API lives (read from the page, since a host may mount Kiln under a
 * prefix), the dashboard session (a cookie, plus the CSRF token every state-changing request sends), JSON
 * requests whose 401 ends the session, and WebSockets that reconnect by themselves.
 */

/** `<prefix>` as the server wrote it into the page ("" when Kiln is mounted at the root). */
const apiPrefix = (document.querySelector('meta[name="kiln-api"]')?.content ?? "").replace(/\/+$/, "")

/** The URL of a route of Kiln's own API: `apiUrl("/builds", {limit: 10})` is `<prefix>/api/builds?limit=10`. */
export const apiUrl = (path, params) => `${apiPrefix}/api${path}${queryString(params)}`

/** The URL of a route beside `/api` under the same prefix (the accounts dialect: `/accounts/…`). */
export const prefixedUrl = (path, params) => `${apiPrefix}${path}${queryString(params)}`

/** The dashboard's own session endpoint, `<prefix>/ui/session`, relative to the page's `<base href>`. */
const sessionUrl = () => new URL("session", document.baseURI).href

/** `?a=1&b=2` from an object, leaving out empty values; "" when nothing is left. */
export const queryString = (params) => {
  if (!params) return ""
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(params))
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value))
  const text = search.toString()
  return text === "" ? "" : `?${text}`
}

/** A failed request: the HTTP status, the API's `error` code and its message. */
export class ApiError extends Error {
  constructor(status, body) {
    const message =
      body?.message ??
      body?.errors?.[0]?.message ??
      (status === 0 ? "The server could not be reached." : `HTTP ${status}`)
    super(message)
    this.status = status
    this.code = body?.error ?? null
    this.body = body
  }
}

let csrfToken = null
let sessionEndedHandler = () => {}

/** Who is told when a request answers 401: the app, which goes back to the sign-in page. */
export const onSessionEnded = (handler) => {
  sessionEndedHandler = handler
}

/** The server's clock minus ours (from the `Date` header of the last answer), so live views can tell old events from new. */
let clockOffset = 0

/** The pauses before asking again after a network error, for a request that changes nothing. */
const retryDelays = [250, 1000, 2000]

/**
 * `fetch`, asked again after a network error (the network changed, a proxy restarted) when `idempotent`:
 * a request that may have reached the server is not sent twice unless that changes nothing.
 */
async function send(url, init, idempotent) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fetch(url, init)
    } catch {
      if (!idempotent || attempt >= retryDelays.length) throw new ApiError(0, null)
      await new Promise((resolve) => setTimeout(resolve, retryDelays[attempt]))
    }
  }
}

/**
 * Sends a request with the session cookie; POST, PATCH and DELETE carry the CSRF header. `json` is sent as
 * a JSON body, `body` as it is (with `contentType`). Answers the parsed JSON (null for an empty body).
 * A 401 ends the session, unless `expectUnauthorized` says the caller handles it. A GET, or a request the
 * caller marks `idempotent`, is asked again after a network error.
 */
export async function request(
  method,
  url,
  { json, body, contentType, expectUnauthorized = false, idempotent = method === "GET" } = {}
) {
  const headers = { accept: "application/json" }
  if (method !== "GET" && csrfToken !== null) headers["x-kiln-csrf"] = csrfToken
  if (json !== undefined) {
    headers["content-type"] = "application/json"
    body = JSON.stringify(json)
  } else if (contentType) headers["content-type"] = contentType
  const response = await send(url, { method, headers, body, credentials: "same-origin" }, idempotent)
  const date = Date.parse(response.headers.get("date") ?? "")
  if (!Number.isNaN(date)) clockOffset = date - Date.now()
  const text = await response.text()
  let parsed = null
  try {
    parsed = text === "" ? null : JSON.parse(text)
  } catch {
    parsed = { message: text.slice(0, 200) }
  }
  if (response.ok) return parsed
  if (response.status === 401 && !expectUnauthorized) {
    csrfToken = null
    sessionEndedHandler("Your session has ended (the token expired or was revoked). Sign in again.")
  }
  throw new ApiError(response.status, parsed)
}

export const get = (path, params) => request("GET", apiUrl(path, params))

/**
 * `get`'s answer, as `data`, and when it was asked on the server's clock, as `since`: the answer may miss an
 * event written while it travelled, so a live view applies the events from then on (`feed.js`'s `isLive`).
 */
export async function getLive(path, params) {
  const asked = Date.now()
  const data = await get(path, params)
  return { data, since: asked + clockOffset }
}
export const post = (path, json) => request("POST", apiUrl(path), { json })

/** Every row of a list, following `endCursor` (at most `max`, for selects and lookups). */
export async function listAll(path, params = {}, max = 1000) {
  const rows = []
  let after
  do {
    const page = await get(path, { ...params, limit: 100, after })
    rows.push(...page.data)
    after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : undefined
  } while (after && rows.length < max)
  return rows
}

// -------------------------------------------------------------------------------------------------
// The session
// -------------------------------------------------------------------------------------------------

const remember = (session) => {
  csrfToken = session.csrfToken
  return session
}

/** The current session, or null when signed out. */
export async function loadSession() {
  try {
    return remember(await request("GET", sessionUrl(), { expectUnauthorized: true }))
  } catch (error) {
    if (error.status === 401) return null
    throw error
  }
}

/** Exchanges a Kiln token for a session cookie; a 401 means the token was not accepted. */
export const signIn = async (token) =>
  // A session is a signed cookie the server keeps nothing of: signing in (or out) twice is harmless.
  remember(
    await request("POST", sessionUrl(), { json: { token }, expectUnauthorized: true, idempotent: true })
  )

export async function signOut() {
  try {
    await request("DELETE", sessionUrl(), { expectUnauthorized: true, idempotent: true })
  } finally {
    csrfToken = null
  }
}

/** Whether the session still holds; a 401 ends it (through the handler). A network error counts as alive. */
export async function sessionAlive() {
  try {
    await request("GET", sessionUrl())
    return true
  } catch (error) {
    return error.status !== 401
  }
}

// -------------------------------------------------------------------------------------------------
// WebSockets
// -------------------------------------------------------------------------------------------------

/** The `ws:`/`wss:` URL of an API route on this page's origin. */
const wsUrl = (path, params) => {
  const url = new URL(apiUrl(path, params), location.href)
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:"
  return url.href
}

/** Close codes the streams use when the caller's token ends: expired, revoked. */
const tokenEndedCodes = new Set([4401, 4403])

/**
 * Follows a WebSocket route (the cookie authenticates it; subprotocol `kiln`). After a dropped connection
 * it checks the session, then reconnects with backoff, asking `params()` again so it resumes from the last
 * cursor. `onMessage` gets each message parsed; `onClose(event)` answers true when the stream is over (no
 * reconnect); `onState` hears "open" and "reconnecting". Answers `{close}`.
 */
export function followSocket(path, { params, onMessage, onClose = () => false, onState = () => {} }) {
  let socket = null
  let timer = null
  let closed = false
  let failures = 0

  const open = () => {
    socket = new WebSocket(wsUrl(path, params()), ["kiln"])
    socket.onopen = () => onState("open")
    socket.onmessage = (message) => {
      failures = 0
      onMessage(JSON.parse(message.data))
    }
    socket.onclose = (event) => {
      socket = null
      if (closed) return
      if (tokenEndedCodes.has(event.code)) {
        csrfToken = null
        sessionEndedHandler("Your session has ended (the token expired or was revoked). Sign in again.")
        return
      }
      if (onClose(event)) return
      failures += 1
      onState("reconnecting")
      const delay = Math.min(30_000, 1000 * 2 ** Math.min(failures - 1, 5))
      timer = setTimeout(async () => {
        timer = null
        if (!closed && (await sessionAlive()) && !closed) open()
      }, delay)
    }
  }

  open()
  return {
    close() {
      closed = true
      clearTimeout(timer)
      socket?.close(1000)
    }
  }
}
