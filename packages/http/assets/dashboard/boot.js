/**
 * The page's first script: loads the app. A script that could not be fetched (the network dropped or
 * changed while the page loaded: Chromium then cancels the requests in flight) would leave the page blank,
 * so the page says so and loads itself again, a few times, each after a longer pause.
 */
const attemptsKey = "kiln.boot.attempts"
const reloads = 4

/** How many times this tab has reloaded the page for a failed load, kept across the reloads. */
const attempts = {
  get: () => Number(sessionStorage.getItem(attemptsKey) ?? 0),
  set: (count) =>
    count === 0 ? sessionStorage.removeItem(attemptsKey) : sessionStorage.setItem(attemptsKey, String(count))
}

const say = (text) => {
  const main = document.createElement("main")
  main.id = "main"
  const message = document.createElement("p")
  message.setAttribute("role", "alert")
  message.dataset.testid = "boot-error"
  message.textContent = text
  main.append(message)
  document.getElementById("app").replaceChildren(main)
}

import("./app.js").then(
  () => attempts.set(0),
  (error) => {
    const done = attempts.get()
    if (done >= reloads) {
      attempts.set(0)
      say(`The dashboard could not load (${error.message}). Reload the page to try again.`)
      return
    }
    attempts.set(done + 1)
    say("The dashboard could not load all of its scripts: trying again…")
    setTimeout(() => location.reload(), 500 * 2 ** done)
  }
)
