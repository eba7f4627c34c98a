/** What every page shares: the `html` tag, the app context, small components, formatting and hooks. */

import htm from "htm"
import { createContext, h } from "preact"
import { useCallback, useContext, useEffect, useRef, useState } from "preact/hooks"

export const html = htm.bind(h)

/**
 * `{session, canWrite, workspaceId, workspaces, announce}`: who is signed in, whether their role may
 * change things, the workspace lists are narrowed to (null: all the token's), and the live region's voice.
 */
export const AppContext = createContext(null)
export const useApp = () => useContext(AppContext)

// -------------------------------------------------------------------------------------------------
// Routing: `#/builds/bld_…?status=failed` → {path: ["builds", "bld_…"], query: URLSearchParams}
// -------------------------------------------------------------------------------------------------

export const parseHash = (hash) => {
  const [path, search = ""] = hash.replace(/^#\/?/, "").split("?", 2)
  return { path: path.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(search) }
}

/** `#/builds?status=failed` from a path and a query object (empty values left out). */
export const href = (path, query = {}) => {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) if (value) search.set(key, value)
  const text = search.toString()
  return `#/${path}${text ? `?${text}` : ""}`
}

export const navigate = (path, query) => {
  location.hash = href(path, query)
}

export function useRoute() {
  const [route, setRoute] = useState(() => parseHash(location.hash))
  useEffect(() => {
    const update = () => setRoute(parseHash(location.hash))
    addEventListener("hashchange", update)
    return () => removeEventListener("hashchange", update)
  }, [])
  return route
}

// -------------------------------------------------------------------------------------------------
// Data loading
// -------------------------------------------------------------------------------------------------

/**
 * Runs `load()` whenever `deps` change: `{data, error, loading, reload, setData}`. What was shown stays
 * while the next answer loads; an answer that arrives after the deps changed again is dropped. A failed
 * `reload` keeps the data it meant to refresh, a failed load for new deps does not.
 */
export function useLoad(load, deps) {
  const [result, setResult] = useState({ data: null, error: null, loading: true })
  const generation = useRef(0)
  const run = useCallback((keepOnError) => {
    const mine = ++generation.current
    setResult((previous) => ({ ...previous, loading: true }))
    load().then(
      (data) => mine === generation.current && setResult({ data, error: null, loading: false }),
      (error) =>
        mine === generation.current &&
        setResult((previous) => ({ data: keepOnError ? previous.data : null, error, loading: false }))
    )
  }, deps)
  useEffect(() => {
    run(false)
    return () => {
      generation.current++
    }
  }, [run])
  const reload = useCallback(() => run(true), [run])
  const setData = useCallback(
    (update) => setResult((previous) => ({ ...previous, data: update(previous.data) })),
    []
  )
  return { ...result, reload, setData }
}

/** The current time, ticking every `ms` while `active` (for running builds' elapsed times). */
export function useNow(active, ms = 1000) {
  const [now, setNow] = useState(Date.now())
  useEffect(() => {
    if (!active) return
    const timer = setInterval(() => setNow(Date.now()), ms)
    return () => clearInterval(timer)
  }, [active, ms])
  return now
}

export function useTitle(title) {
  useEffect(() => {
    document.title = title ? `${title} · Kiln` : "Kiln"
  }, [title])
}

// -------------------------------------------------------------------------------------------------
// Formatting
// -------------------------------------------------------------------------------------------------

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" })

export const Time = ({ at }) =>
  at ? html`<time datetime=${at} title=${at}>${dateTime.format(new Date(at))}</time>` : html`<span>—</span>`

/** `1h 2m`, `3m 4s`, `5.2s`, `340ms`. */
export const formatDuration = (ms) => {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—"
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`
  const seconds = Math.round(ms / 1000)
  const [h, m, s] = [Math.floor(seconds / 3600), Math.floor((seconds % 3600) / 60), seconds % 60]
  return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s}s` : `${s}s`
}

/** The time between two ISO timestamps; to `now` while the second is null. */
export const between = (from, to, now = Date.now()) =>
  from ? (to ? Date.parse(to) : now) - Date.parse(from) : null

export const shortSha = (sha) => (sha ? sha.slice(0, 12) : "—")

// -------------------------------------------------------------------------------------------------
// Components
// -------------------------------------------------------------------------------------------------

/** A status in words, with a symbol and colour that only repeat what the words say. */
const statusSymbols = {
  pending: "◷",
  running: "▶",
  completed: "✓",
  succeeded: "✓",
  failed: "✕",
  cancelled: "⊘",
  skipped: "↷",
  ready: "✓",
  delivered: "✓"
}

export const StatusBadge = ({ status, testid }) =>
  html`<span class=${`badge badge-${status}`} data-testid=${testid}>
    <span aria-hidden="true">${statusSymbols[status] ?? "•"}</span> ${status}
  </span>`

export const ErrorMessage = ({ error }) =>
  error ? html`<p class="error" role="alert">${error.message ?? String(error)}</p>` : null

/** A page's heading, focusable so that navigation can move focus to it. */
export const PageTitle = ({ children }) => html`<h1 tabindex="-1">${children}</h1>`

/** A table that scrolls sideways in its own focusable region when it is wider than the screen. */
export const TableRegion = ({ label, children }) =>
  html`<div class="table-wrap" role="region" aria-label=${label} tabindex="0">${children}</div>`

/** Previous/next buttons over a `{pageInfo}` list. */
export const Pager = ({ pageInfo, onPrev, onNext }) =>
  html`<nav class="pager" aria-label="Pages">
    <button type="button" data-testid="page-prev" disabled=${!pageInfo?.hasPreviousPage} onClick=${onPrev}>
      ← Previous
    </button>
    <button type="button" data-testid="page-next" disabled=${!pageInfo?.hasNextPage} onClick=${onNext}>
      Next →
    </button>
  </nav>`

/** A form's outcome: an error (alert) or a confirmation (status). */
export const FormMessage = ({ message }) =>
  message === null
    ? null
    : message.error
      ? html`<p class="error" role="alert">${message.error}</p>`
      : html`<p class="ok" role="status">${message.ok}</p>`
