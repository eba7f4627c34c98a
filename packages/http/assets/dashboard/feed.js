/**
 * The event feed (`/api/events/stream`), one connection for the whole dashboard while someone listens.
 * It resumes from the last cursor after a dropped connection, so no event is missed or seen twice.
 *
 * The feed has no "start from now": a first connection replays the feed from its start (as far as
 * retention kept it). Views therefore apply events idempotently and use `isLive` to ignore ones older
 * than what they loaded.
 */
import { followSocket } from "./api.js"

const listeners = new Set()
const stateListeners = new Set()
let connection = null
let cursor = null
let state = "connecting"

const setState = (next) => {
  state = next
  for (const listener of stateListeners) listener(next)
}

/** Calls `listener(event)` for each event; answers the function that stops it. Connects on first use. */
export function subscribe(listener) {
  listeners.add(listener)
  if (connection === null) {
    setState("connecting")
    connection = followSocket("/events/stream", {
      // Every type the feed has: the views apply whatever concerns a build or a version they show.
      params: () => ({ after: cursor }),
      onMessage: (event) => {
        cursor = event.cursor
        for (const each of listeners) each(event)
      },
      onState: (next) => setState(next === "open" ? "live" : next)
    })
  }
  return () => listeners.delete(listener)
}

/** Calls `listener(state)` ("connecting", "live", "reconnecting") on each change; answers the unsubscriber. */
export function watchState(listener) {
  stateListeners.add(listener)
  listener(state)
  return () => stateListeners.delete(listener)
}

/** Closes the feed (on sign-out); the next subscriber starts over. */
export function closeFeed() {
  connection?.close()
  connection = null
  cursor = null
}

/**
 * Whether an event happened after `since` (server milliseconds: when the view asked for what it shows, as
 * api.js's `getLive` answers), with a second's slack for the `Date` header's precision.
 */
export const isLive = (event, since) => Date.parse(event.timestamp) >= since - 1000
