/**
 * Apps: the workspace's apps, and one app's versions, where a writer uploads an archive or names a git
 * commit to make a new version, and queues a build of a ready one.
 */
import { useEffect, useRef, useState } from "preact/hooks"
import { apiUrl, get, getLive, post, request } from "./api.js"
import { isLive, subscribe } from "./feed.js"
import {
  ErrorMessage,
  FormMessage,
  formatDuration,
  html,
  navigate,
  Pager,
  PageTitle,
  StatusBadge,
  shortSha,
  TableRegion,
  Time,
  useApp,
  useLoad,
  useTitle
} from "./ui.js"

const cursorsOf = (query) => ({
  after: query.get("after") ?? undefined,
  before: query.get("before") ?? undefined
})

export function AppsList({ query }) {
  useTitle("Apps")
  const { workspaceId } = useApp()
  const list = useLoad(
    () => get("/apps", { workspace_id: workspaceId, limit: 50, ...cursorsOf(query) }),
    [workspaceId, query.toString()]
  )
  const page = list.data
  return html`
    <${PageTitle}>Apps<//>
    <${ErrorMessage} error=${list.error} />
    ${list.loading && !page && html`<p>Loading…</p>`}
    ${page && page.data.length === 0 && html`<p>No apps yet.</p>`}
    ${
      page &&
      page.data.length > 0 &&
      html`<${TableRegion} label="Apps">
        <table class="responsive">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Handle</th>
              <th scope="col">Kind</th>
              <th scope="col">Strategy</th>
              <th scope="col">Root directory</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            ${page.data.map(
              (app) => html`<tr key=${app.id}>
                <th scope="row" data-label="Name"><a href=${`#/apps/${app.id}`}>${app.name}</a></th>
                <td data-label="Handle"><code>${app.handle}</code></td>
                <td data-label="Kind">${app.kind}</td>
                <td data-label="Strategy">${app.build.strategy}</td>
                <td data-label="Root directory"><code>${app.build.rootDirectory || "/"}</code></td>
                <td data-label="Created"><${Time} at=${app.createdAt} /></td>
              </tr>`
            )}
          </tbody>
        </table>
      <//>`
    }
    <${Pager}
      pageInfo=${page?.pageInfo}
      onPrev=${() => navigate("apps", { before: page.pageInfo.startCursor })}
      onNext=${() => navigate("apps", { after: page.pageInfo.endCursor })}
    />
  `
}

export function AppDetail({ id, query }) {
  const { canWrite } = useApp()
  const app = useLoad(() => get(`/apps/${id}`), [id])
  useTitle(app.data ? app.data.name : "App")

  const loadedAt = useRef(0)
  const versions = useLoad(async () => {
    const { data, since } = await getLive("/app-versions", { app_id: id, limit: 20, ...cursorsOf(query) })
    loadedAt.current = since
    return data
  }, [id, query.toString()])

  // A pending version becomes ready (or fails) when the engine resolves it: update its row.
  useEffect(
    () =>
      subscribe((event) => {
        const version = event.data?.appVersion
        if (!version || !isLive(event, loadedAt.current)) return
        versions.setData(
          (page) =>
            page && {
              ...page,
              data: page.data.map((row) =>
                row.id === version.id && Date.parse(version.updatedAt) > Date.parse(row.updatedAt)
                  ? version
                  : row
              )
            }
        )
      }),
    [id]
  )

  if (!app.data)
    return html`<${PageTitle}>App<//>
      ${app.loading ? html`<p>Loading…</p>` : html`<${ErrorMessage} error=${app.error} />`}`

  const settings = app.data.build
  const page = versions.data
  return html`
    <${PageTitle}>${app.data.name}<//>
    <p><a href=${`#/builds?app=${encodeURIComponent(id)}`}>Builds of this app</a></p>
    <section>
      <h2>Build settings</h2>
      <dl class="details">
        <dt>Handle</dt>
        <dd><code>${app.data.handle}</code></dd>
        <dt>Kind</dt>
        <dd>${app.data.kind}</dd>
        <dt>Strategy</dt>
        <dd>${settings.strategy}</dd>
        <dt>Root directory</dt>
        <dd><code>${settings.rootDirectory || "/"}</code></dd>
        <dt>Dockerfile</dt>
        <dd><code>${settings.dockerfilePath}</code></dd>
        ${settings.buildCommand && html`<dt>Build command</dt><dd><code class="wrap">${settings.buildCommand}</code></dd>`}
        <dt>Timeout</dt>
        <dd>${formatDuration(settings.timeoutMs)}</dd>
      </dl>
    </section>

    ${
      canWrite &&
      html`<section>
        <h2>New version</h2>
        <div class="forms">
          <${UploadForm} appId=${id} onCreated=${versions.reload} />
          <${GitForm} appId=${id} onCreated=${versions.reload} />
        </div>
      </section>`
    }

    <section>
      <h2>Versions</h2>
      <${ErrorMessage} error=${versions.error} />
      ${page && page.data.length === 0 && html`<p>No versions yet.</p>`}
      ${page && page.data.length > 0 && html`<${Versions} versions=${page.data} canWrite=${canWrite} />`}
      <${Pager}
        pageInfo=${page?.pageInfo}
        onPrev=${() => navigate(`apps/${id}`, { before: page.pageInfo.startCursor })}
        onNext=${() => navigate(`apps/${id}`, { after: page.pageInfo.endCursor })}
      />
    </section>
  `
}

function Versions({ versions, canWrite }) {
  const [queueing, setQueueing] = useState(null)
  const [message, setMessage] = useState(null)
  const queue = async (version) => {
    setQueueing(version.id)
    setMessage(null)
    try {
      const build = await post("/builds", { appVersionId: version.id })
      navigate(`builds/${build.id}`)
    } catch (error) {
      setMessage({ error: error.message })
      setQueueing(null)
    }
  }
  return html`
    <${FormMessage} message=${message} />
    <${TableRegion} label="Versions">
      <table class="responsive">
        <thead>
          <tr>
            <th scope="col">Created</th>
            <th scope="col">Source</th>
            <th scope="col">Status</th>
            <th scope="col">Commit or sha256</th>
            ${canWrite && html`<th scope="col"><span class="visually-hidden">Actions</span></th>`}
          </tr>
        </thead>
        <tbody>
          ${versions.map(
            (version) => html`<tr key=${version.id} data-version-id=${version.id}>
              <th scope="row" data-label="Created"><${Time} at=${version.createdAt} /></th>
              <td data-label="Source">
                ${
                  version.source.type === "git"
                    ? html`git <code class="wrap">${version.source.url}</code>${version.source.ref && html` at <code>${version.source.ref}</code>`}`
                    : "uploaded archive"
                }
              </td>
              <td data-label="Status">
                <${StatusBadge} status=${version.status} />
                ${version.error && html`<div class="muted">${version.error}</div>`}
              </td>
              <td data-label="Commit or sha256"><code title=${version.commitSha ?? ""}>${shortSha(version.commitSha)}</code></td>
              ${
                canWrite &&
                html`<td data-label="Actions">
                  <button
                    type="button"
                    data-testid="queue-build"
                    disabled=${version.status !== "ready" || queueing !== null}
                    aria-label=${`Queue build: the version of ${new Date(version.createdAt).toLocaleString()}`}
                    onClick=${() => queue(version)}
                  >
                    ${queueing === version.id ? "Queueing…" : "Queue build"}
                  </button>
                </td>`
              }
            </tr>`
          )}
        </tbody>
      </table>
    <//>
  `
}

/** Upload a .tar.gz: create an archive version, then send the file as its body. */
function UploadForm({ appId, onCreated }) {
  const [busy, setBusy] = useState(false)
  const [message, setMessage] = useState(null)
  const submit = async (event) => {
    event.preventDefault()
    const form = event.currentTarget
    const file = form.elements.archive.files[0]
    setBusy(true)
    setMessage(null)
    let version = null
    try {
      version = await post("/app-versions", { appId, source: { type: "archive" } })
      const ready = await request("POST", apiUrl(`/app-versions/${version.id}/archive`), {
        body: file,
        contentType: "application/gzip"
      })
      setMessage({ ok: `Uploaded: the new version's sha256 is ${ready.commitSha}.` })
      form.reset()
      onCreated()
    } catch (error) {
      setMessage({ error: `The upload failed: ${error.message}` })
      // The version was made but has no archive: it stays pending, so show it as it is.
      if (version) onCreated()
    } finally {
      setBusy(false)
    }
  }
  return html`<form class="card" onSubmit=${submit}>
    <h3>Upload an archive</h3>
    <div class="field">
      <label for="upload-archive">Archive (.tar.gz)</label>
      <input
        id="upload-archive"
        name="archive"
        type="file"
        accept=".tar.gz,.tgz,application/gzip"
        required
        data-testid="upload-archive"
      />
    </div>
    <button type="submit" data-testid="upload-submit" disabled=${busy}>
      ${busy ? "Uploading…" : "Upload"}
    </button>
    <${FormMessage} message=${message} />
  </form>`
}

const commitPattern = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/

/** A git version: a repository URL and a branch or tag (resolved by the server) or an exact commit. */
function GitForm({ appId, onCreated }) {
  const [busy, setBusy] = useState(false)
  const [message, setMessage] = useState(null)
  const submit = async (event) => {
    event.preventDefault()
    const form = event.currentTarget
    const url = form.elements.url.value.trim()
    const at = form.elements.ref.value.trim()
    const source = commitPattern.test(at)
      ? { type: "git", url, commitSha: at }
      : { type: "git", url, ref: at }
    setBusy(true)
    setMessage(null)
    try {
      const version = await post("/app-versions", { appId, source })
      setMessage({
        ok:
          version.status === "ready"
            ? "Version created."
            : "Version created: the server is resolving it to a commit."
      })
      form.reset()
      onCreated()
    } catch (error) {
      setMessage({ error: error.message })
    } finally {
      setBusy(false)
    }
  }
  return html`<form class="card" onSubmit=${submit}>
    <h3>From a git repository</h3>
    <div class="field">
      <label for="git-url">Repository URL</label>
      <input
        id="git-url"
        name="url"
        type="text"
        inputmode="url"
        required
        spellcheck="false"
        placeholder="https://git.example.com/acme/site.git"
        data-testid="git-url"
      />
    </div>
    <div class="field">
      <label for="git-ref">Branch, tag or commit</label>
      <input
        id="git-ref"
        name="ref"
        type="text"
        required
        spellcheck="false"
        placeholder="main"
        data-testid="git-ref"
      />
    </div>
    <button type="submit" data-testid="git-submit" disabled=${busy}>${busy ? "Creating…" : "Create version"}</button>
    <${FormMessage} message=${message} />
  </form>`
}
