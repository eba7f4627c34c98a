/**
 * Kiln's dashboard: the shell (session, header with navigation and workspace switcher, live region) and
 * the hash router that picks a page. Preact with htm, served as-is: no build step.
 */
import { render } from "preact"
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks"
import { listAll, loadSession, onSessionEnded, sessionAlive, signOut } from "./api.js"
import { AppDetail, AppsList } from "./apps.js"
import { BuildPage } from "./build.js"
import { BuildsList } from "./builds.js"
import { closeFeed } from "./feed.js"
import { SignIn } from "./signin.js"
import { Triggers } from "./triggers.js"
import { AppContext, html, useRoute } from "./ui.js"
import { WebhookDetail, WebhooksList } from "./webhooks.js"

const workspaceKey = "kiln.dashboard.workspace"

/** The page for a route; unknown routes go to the builds list. */
function Page({ route }) {
  const [section, id] = route.path
  switch (section) {
    case "builds":
      return id ? html`<${BuildPage} key=${id} id=${id} />` : html`<${BuildsList} query=${route.query} />`
    case "apps":
      return id
        ? html`<${AppDetail} key=${id} id=${id} query=${route.query} />`
        : html`<${AppsList} query=${route.query} />`
    case "webhooks":
      return id
        ? html`<${WebhookDetail} key=${id} id=${id} query=${route.query} />`
        : html`<${WebhooksList} />`
    case "triggers":
      return html`<${Triggers} />`
    default:
      return html`<${BuildsList} query=${route.query} />`
  }
}

const sections = [
  ["builds", "Builds"],
  ["apps", "Apps"],
  ["triggers", "Triggers"],
  ["webhooks", "Webhooks"]
]

function Header({ session, section, workspaces, workspaceId, onWorkspace, onSignOut }) {
  return html`
    <header class="site-header">
      <a class="brand" href="#/builds">Kiln</a>
      <nav aria-label="Main">
        <ul>
          ${sections.map(
            ([key, label]) =>
              html`<li><a href=${`#/${key}`} aria-current=${section === key ? "page" : undefined}>${label}</a></li>`
          )}
        </ul>
      </nav>
      <div class="header-tools">
        ${
          workspaces.length > 1
            ? html`<label class="workspace">
                <span>Workspace</span>
                <select
                  data-testid="workspace-switcher"
                  value=${workspaceId ?? ""}
                  onChange=${(event) => onWorkspace(event.currentTarget.value || null)}
                >
                  <option value="">All workspaces</option>
                  ${workspaces.map((workspace) => html`<option value=${workspace.id}>${workspace.name}</option>`)}
                </select>
              </label>`
            : workspaces.length === 1 && html`<span class="workspace">Workspace: ${workspaces[0].name}</span>`
        }
        <span class="who">${session.name} <span class="role">(${session.role})</span></span>
        <button type="button" class="secondary" data-testid="signout" onClick=${onSignOut}>Sign out</button>
      </div>
    </header>
  `
}

function App() {
  const route = useRoute()
  // undefined while the session is being looked up, null when signed out.
  const [session, setSession] = useState(undefined)
  const [notice, setNotice] = useState(null)
  const [startupError, setStartupError] = useState(null)
  const [workspaces, setWorkspaces] = useState([])
  const [workspaceId, setWorkspaceId] = useState(() => localStorage.getItem(workspaceKey))
  const [announcement, setAnnouncement] = useState("")

  const endSession = useCallback((message) => {
    closeFeed()
    setSession(null)
    setNotice(message)
  }, [])

  useEffect(() => {
    onSessionEnded(endSession)
    loadSession().then(setSession, (error) => {
      setStartupError(error)
      setSession(null)
    })
  }, [])

  // The workspaces the token sees; a remembered choice it no longer sees is dropped.
  useEffect(() => {
    if (!session) return
    listAll("/workspaces").then(
      (list) => {
        setWorkspaces(list)
        setWorkspaceId((chosen) => (list.some((workspace) => workspace.id === chosen) ? chosen : null))
      },
      () => setWorkspaces([])
    )
  }, [session])

  // When the session is due to expire, ask the server (a 401 then signs out with a message).
  useEffect(() => {
    if (!session?.expiresAt) return
    const wait = Date.parse(session.expiresAt) - Date.now() + 1000
    if (!(wait > 0 && wait < 2 ** 31)) return
    const timer = setTimeout(sessionAlive, wait)
    return () => clearTimeout(timer)
  }, [session])

  const chooseWorkspace = (id) => {
    if (id) localStorage.setItem(workspaceKey, id)
    else localStorage.removeItem(workspaceKey)
    setWorkspaceId(id)
  }

  const doSignOut = async () => {
    try {
      await signOut()
    } finally {
      endSession("You have signed out.")
    }
  }

  // Announcing the same text twice must still be heard: clear it, then set it on the next frame.
  const announce = useCallback((message) => {
    setAnnouncement("")
    requestAnimationFrame(() => setAnnouncement(message))
  }, [])

  // Moving between pages moves focus to the new page's heading (not on the first page shown).
  const pathKey = route.path.join("/")
  const firstPath = useRef(true)
  useEffect(() => {
    if (firstPath.current) {
      firstPath.current = false
      return
    }
    document.querySelector("main h1")?.focus()
  }, [pathKey])

  const context = useMemo(
    () =>
      session && {
        session,
        canWrite: session.role === "write" || session.role === "admin",
        workspaceId,
        workspaces,
        announce
      },
    [session, workspaceId, workspaces, announce]
  )

  if (session === undefined) return html`<main id="main" class="loading"><p>Loading…</p></main>`
  if (session === null)
    return html`
      <header class="site-header"><span class="brand">Kiln</span></header>
      <${SignIn}
        notice=${notice ?? startupError?.message}
        onSignedIn=${(next) => {
          setNotice(null)
          setStartupError(null)
          setSession(next)
          // The sign-in form is gone: put focus on the page that replaced it.
          requestAnimationFrame(() => document.querySelector("main h1")?.focus())
        }}
      />
    `
  return html`
    <${AppContext.Provider} value=${context}>
      <a class="skip-link" href="#main" onClick=${skipToMain}>Skip to content</a>
      <${Header}
        session=${session}
        section=${route.path[0] ?? "builds"}
        workspaces=${workspaces}
        workspaceId=${workspaceId}
        onWorkspace=${chooseWorkspace}
        onSignOut=${doSignOut}
      />
      <main id="main" tabindex="-1"><${Page} route=${route} /></main>
      <div class="visually-hidden" role="status" aria-live="polite" aria-atomic="true">${announcement}</div>
    <//>
  `
}

/** The skip link targets `#main`, which would be read as a route: move focus instead. */
function skipToMain(event) {
  event.preventDefault()
  document.getElementById("main")?.focus()
}

// Hash links resolve against <base href>; if the page was opened under another path (e.g. …/ui/index.html),
// show it at the base so those links stay on this page instead of loading it again.
if (location.pathname !== new URL(document.baseURI).pathname)
  history.replaceState(null, "", new URL(document.baseURI).pathname + location.search + location.hash)

render(html`<${App} />`, document.getElementById("app"))
