/** The sign-in page: a Kiln token in, a session cookie out (the token itself is not kept in the browser). */
import { useEffect, useRef, useState } from "preact/hooks"
import { signIn } from "./api.js"
import { html, PageTitle, useTitle } from "./ui.js"

export function SignIn({ notice, onSignedIn }) {
  useTitle("Sign in")
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState(null)
  const input = useRef(null)
  useEffect(() => input.current?.focus(), [])

  const submit = async (event) => {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      onSignedIn(await signIn(input.current.value.trim()))
    } catch (failure) {
      setError(
        failure.status === 401
          ? "That token was not accepted: it is unknown, expired or revoked."
          : failure.message
      )
      setBusy(false)
    }
  }

  return html`
    <main id="main" class="signin">
      <${PageTitle}>Sign in to Kiln<//>
      ${notice && html`<p class="notice" role="status">${notice}</p>`}
      <form onSubmit=${submit}>
        <label for="signin-token">API token</label>
        <input
          id="signin-token"
          ref=${input}
          type="password"
          autocomplete="off"
          spellcheck="false"
          required
          aria-describedby="signin-hint${error ? " signin-error" : ""}"
          data-testid="signin-token"
        />
        <p id="signin-hint" class="hint">
          A Kiln API token (<code>kiln_pat_…</code>). It is exchanged for a session; the token is not stored in the browser.
        </p>
        ${error && html`<p id="signin-error" class="error" role="alert">${error}</p>`}
        <button type="submit" data-testid="signin-submit" disabled=${busy}>${busy ? "Signing in…" : "Sign in"}</button>
      </form>
    </main>
  `
}
