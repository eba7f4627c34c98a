/**
 * A build's log: read a page at a time over HTTP until it catches up, then followed live over the log
 * WebSocket, resuming from the last cursor after a dropped connection. Only the rows in view are rendered
 * (fixed row height, a spacer as tall as the whole log, a scroll handler), so 100,000 lines stay
 * responsive. Search highlights matches (or shows only matching lines); ANSI colours come from AnsiUp,
 * which also escapes the text's HTML.
 */
import * as ansiUpModule from "ansi_up"
import { useEffect, useLayoutEffect, useMemo, useReducer, useRef, useState } from "preact/hooks"
import { apiUrl, followSocket, get } from "./api.js"
import { html } from "./ui.js"

/** Pixels per row: must match `.log-row` in style.css. */
const rowHeight = 20
/** Rows rendered beyond each edge of the view, so fast scrolling shows no gap. */
const overscan = 20
/** Lines per HTTP page (the API's maximum). */
const pageLines = 10_000

// ansi_up's ESM build exports the class by name (6.x) or as its default (older builds).
const AnsiUp = ansiUpModule.AnsiUp ?? ansiUpModule.default
const ansi = new AnsiUp()
ansi.use_classes = true

/**
 * The page's Content-Security-Policy refuses inline `style` attributes, so AnsiUp's few inline styles
 * become classes (style.css); 256-colour and true-colour values, which have no class, are left out.
 */
const styleClasses = {
  "font-weight:bold": "ansi-bold",
  "opacity:0.7": "ansi-faint",
  "font-style:italic": "ansi-italic",
  "text-decoration:underline": "ansi-underline"
}
const toClasses = (_, style, classes = "") => {
  const names = [...classes.split(" "), ...style.split(";").map((rule) => styleClasses[rule])].filter(Boolean)
  return names.length > 0 ? `<span class="${names.join(" ")}">` : "<span>"
}

/** One line's HTML. Lines are converted out of order as they scroll into view, so each starts from reset. */
const htmlOf = (line) => {
  if (line.html === undefined) {
    ansi.ansi_to_html("\x1b[0m")
    line.html = ansi
      .ansi_to_html(line.text)
      .replace(/<span style="([^"]*)"(?: class="([^"]*)")?>/g, toClasses)
  }
  return line.html
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are what it removes
const ansiSequence = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g
/** A line's text without escape sequences: what search sees. */
const plainOf = (line) => {
  if (line.plain === undefined) line.plain = line.text.replace(ansiSequence, "")
  return line.plain
}

const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** The lines read so far, and the indices of those matching the search. Mutable: the view re-renders on demand. */
class LogStore {
  lines = []
  /** The search, case-insensitive: `pattern` tests a line, `splitter` cuts it around the matches. */
  pattern = null
  splitter = null
  matches = []

  add(batch) {
    for (const line of batch) {
      this.lines.push(line)
      if (this.pattern?.test(plainOf(line))) this.matches.push(this.lines.length - 1)
    }
  }

  search(text) {
    this.pattern = text === "" ? null : new RegExp(escapeRegExp(text), "i")
    this.splitter = text === "" ? null : new RegExp(`(${escapeRegExp(text)})`, "i")
    this.matches = []
    if (this.pattern === null) return
    this.lines.forEach((line, index) => {
      if (this.pattern.test(plainOf(line))) this.matches.push(index)
    })
  }
}

/**
 * Reads and follows a build's log into `store`: `{phase, error, truncated}`, phase being "loading",
 * "live", "reconnecting", "complete", "expired" or "error". `onStatus` hears the stream's status messages.
 */
function useLogFeed(buildId, store, bump, onStatus) {
  const [phase, setPhase] = useState("loading")
  const [error, setError] = useState(null)
  const [truncated, setTruncated] = useState(false)
  const statusListener = useRef(onStatus)
  statusListener.current = onStatus

  useEffect(() => {
    let cancelled = false
    let socket = null
    let cursor
    let ended = false
    // Streamed lines are added once per frame, however fast they come.
    let pending = []
    let frame = 0
    const flush = () => {
      frame = 0
      store.add(pending)
      pending = []
      bump()
    }

    const follow = () => {
      socket = followSocket(`/builds/${buildId}/logs/stream`, {
        params: () => ({ cursor }),
        onMessage: (message) => {
          if (message.type === "line") {
            cursor = message.cursor
            pending.push(message)
            if (frame === 0) frame = requestAnimationFrame(flush)
          } else if (message.type === "status") statusListener.current?.(message.status)
          else if (message.type === "end") {
            cursor = message.cursor
            ended = true
            statusListener.current?.(message.status)
          }
        },
        onClose: (event) => {
          if (ended) setPhase("complete")
          else if (event.code === 4410) setPhase("expired")
          return ended || event.code === 4410
        },
        onState: (state) => setPhase(state === "open" ? "live" : "reconnecting")
      })
    }

    const read = async () => {
      try {
        for (;;) {
          const page = await get(`/builds/${buildId}/logs`, { cursor, limit: pageLines })
          if (cancelled) return
          store.add(page.data)
          cursor = page.cursor
          if (page.truncated) setTruncated(true)
          bump()
          if (page.complete) return setPhase("complete")
          // A short page means we caught up with a running build: follow it from here.
          if (page.data.length < pageLines) break
        }
        follow()
      } catch (failure) {
        if (cancelled) return
        if (failure.status === 410) setPhase("expired")
        else {
          setError(failure)
          setPhase("error")
        }
      }
    }

    read()
    return () => {
      cancelled = true
      socket?.close()
      cancelAnimationFrame(frame)
    }
  }, [buildId])

  return { phase, error, truncated }
}

const phaseText = {
  loading: "Loading…",
  live: "Live",
  reconnecting: "Connection lost: reconnecting…",
  complete: "Complete",
  error: "Could not load the log"
}

export function LogView({ buildId, onStatus }) {
  const store = useMemo(() => new LogStore(), [buildId])
  const [, bump] = useReducer((n) => n + 1, 0)
  const { phase, error, truncated } = useLogFeed(buildId, store, bump, onStatus)

  const [follow, setFollow] = useState(true)
  const [query, setQuery] = useState("")
  const [onlyMatches, setOnlyMatches] = useState(false)
  const [currentMatch, setCurrentMatch] = useState(-1)
  const [scrollTop, setScrollTop] = useState(0)
  const [viewHeight, setViewHeight] = useState(480)
  const viewport = useRef(null)
  const followRef = useRef(follow)
  followRef.current = follow

  // Search a moment after typing stops: one pass over the whole log per query.
  useEffect(() => {
    const timer = setTimeout(() => {
      store.search(query)
      setCurrentMatch(-1)
      bump()
    }, 150)
    return () => clearTimeout(timer)
  }, [query, store])

  useEffect(() => {
    const element = viewport.current
    if (!element) return
    const observer = new ResizeObserver(() => setViewHeight(element.clientHeight))
    observer.observe(element)
    return () => observer.disconnect()
  }, [phase === "expired"])

  // The rows on show: every line, or only the matching ones.
  const filtering = onlyMatches && store.pattern !== null
  const count = filtering ? store.matches.length : store.lines.length
  const visible = Math.ceil(viewHeight / rowHeight)
  // Following, the window is the end of the log, whatever the last scroll position was.
  const top = follow ? Math.max(0, count * rowHeight - viewHeight) : scrollTop
  const first = Math.max(0, Math.floor(top / rowHeight) - overscan)
  const last = Math.min(count, first + visible + 2 * overscan)

  useLayoutEffect(() => {
    const element = viewport.current
    if (follow && element) element.scrollTop = element.scrollHeight
  })

  const scrollFrame = useRef(0)
  const onScroll = () => {
    const element = viewport.current
    if (scrollFrame.current === 0)
      scrollFrame.current = requestAnimationFrame(() => {
        scrollFrame.current = 0
        setScrollTop(element.scrollTop)
      })
    // Scrolling up from the end stops following.
    if (followRef.current && element.scrollTop + element.clientHeight < element.scrollHeight - rowHeight)
      setFollow(false)
  }

  /** Moves to the next (+1) or previous (-1) match and scrolls it into the middle of the view. */
  const step = (direction) => {
    const total = store.matches.length
    if (total === 0) return
    const next =
      currentMatch < 0 ? (direction > 0 ? 0 : total - 1) : (currentMatch + direction + total) % total
    setCurrentMatch(next)
    setFollow(false)
    const row = filtering ? next : store.matches[next]
    const element = viewport.current
    element.scrollTop = row * rowHeight - element.clientHeight / 2
    setScrollTop(element.scrollTop)
  }

  if (phase === "expired")
    return html`<div class="log-expired notice" data-testid="build-log" role="status">
      This build's log expired under the retention policy.
    </div>`

  const currentLine = currentMatch >= 0 ? store.matches[currentMatch] : -1
  const rows = []
  for (let position = first; position < last; position++) {
    const index = filtering ? store.matches[position] : position
    rows.push(
      html`<${LogRow}
        key=${index}
        line=${store.lines[index]}
        splitter=${store.pattern?.test(plainOf(store.lines[index])) ? store.splitter : null}
        current=${index === currentLine}
      />`
    )
  }
  const matchText =
    store.pattern === null
      ? ""
      : store.matches.length === 0
        ? "No matches"
        : currentMatch < 0
          ? `${store.matches.length} matches`
          : `Match ${currentMatch + 1} of ${store.matches.length}`

  return html`
    <div class="log-toolbar">
      <div class="field">
        <label for="log-search">Search the log</label>
        <input
          id="log-search"
          type="search"
          data-testid="log-search"
          value=${query}
          aria-describedby="log-matches"
          onInput=${(event) => setQuery(event.currentTarget.value)}
          onKeyDown=${(event) => {
            if (event.key === "Enter") {
              event.preventDefault()
              step(event.shiftKey ? -1 : 1)
            }
          }}
        />
      </div>
      <div class="match-nav">
        <button type="button" class="secondary" onClick=${() => step(-1)} disabled=${store.matches.length === 0}>
          Previous match
        </button>
        <button type="button" class="secondary" onClick=${() => step(1)} disabled=${store.matches.length === 0}>
          Next match
        </button>
        <span id="log-matches" role="status">${matchText}</span>
      </div>
      <label class="check">
        <input type="checkbox" checked=${onlyMatches} onChange=${(event) => setOnlyMatches(event.currentTarget.checked)} />
        Only matching lines
      </label>
      <label class="check">
        <input
          type="checkbox"
          data-testid="follow-tail"
          checked=${follow}
          onChange=${(event) => setFollow(event.currentTarget.checked)}
        />
        Follow the end
      </label>
      <a
        class="log-download"
        data-testid="download-log"
        href=${apiUrl(`/builds/${buildId}/logs`, { format: "text" })}
        download=${`${buildId}.log`}
      >Download as text</a>
    </div>
    <p class="log-state">
      <span>${phaseText[phase]}</span> · <span>${store.lines.length.toLocaleString()} lines</span>
      ${truncated && html` · <span>Some lines were left out: the log went over its size limit.</span>`}
    </p>
    ${error && html`<p class="error" role="alert">${error.message}</p>`}
    <div
      class="log-viewport"
      ref=${viewport}
      role="region"
      aria-label="Build log"
      tabindex="0"
      data-testid="build-log"
      onScroll=${onScroll}
    >
      <div class="log-spacer" style=${{ height: `${count * rowHeight}px` }}>
        <div class="log-window" style=${{ transform: `translateY(${first * rowHeight}px)` }}>${rows}</div>
      </div>
    </div>
    ${phase === "complete" && store.lines.length === 0 && html`<p>This build wrote no log lines.</p>`}
  `
}

/** One row: the line's number and its text, coloured, or with the search's matches marked. */
function LogRow({ line, splitter, current }) {
  const className = `log-row log-${line.stream}${current ? " log-current" : ""}`
  if (splitter === null)
    return html`<div class=${className} data-testid="log-line" data-seq=${line.seq}>
      <span class="log-n" aria-hidden="true">${line.seq}</span><span
        class="log-text"
        dangerouslySetInnerHTML=${{ __html: htmlOf(line) }}
      ></span>
    </div>`
  // Split with a capturing pattern: the odd parts are the matches.
  const parts = plainOf(line).split(splitter)
  return html`<div class=${`${className} log-match`} data-testid="log-line" data-seq=${line.seq}>
    <span class="log-n" aria-hidden="true">${line.seq}</span><span class="log-text"
      >${parts.map((part, i) => (i % 2 === 1 ? html`<mark>${part}</mark>` : part))}</span
    >
  </div>`
}
