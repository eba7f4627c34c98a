/**
 * Triggers: which pushes build which app. Kiln's own API has no trigger list; triggers live in the accounts
 * dialect, one list per app (`GET <prefix>/accounts/{workspace}/builds/workers/{app}/triggers`, answered in
 * the `{success, errors, messages, result}` envelope), so this page asks for each app's.
 */
import { listAll, prefixedUrl, request, sessionAlive } from "./api.js"
import { ErrorMessage, html, PageTitle, TableRegion, useApp, useLoad, useTitle } from "./ui.js"

/** How many apps' triggers are asked for at once. */
const concurrency = 4

const triggersPath = (app) =>
  `/accounts/${encodeURIComponent(app.workspaceId)}/builds/workers/${encodeURIComponent(app.id)}/triggers`

/**
 * A 401 here need not mean the session ended: the accounts dialect may not take the dashboard's session.
 * Ask the session endpoint (which signs out if it did end), and otherwise say what was refused.
 */
async function refused(error) {
  if (error.status === 401 && (await sessionAlive()))
    throw new Error(
      "The server's accounts API, which lists triggers, did not accept the dashboard's session."
    )
  throw error
}

async function loadTriggers(workspaceId) {
  const apps = await listAll("/apps", { workspace_id: workspaceId })
  const rows = []
  const queue = [...apps]
  const worker = async () => {
    for (let app = queue.shift(); app; app = queue.shift()) {
      const answer = await request("GET", prefixedUrl(triggersPath(app)), { expectUnauthorized: true }).catch(
        refused
      )
      for (const trigger of answer.result) rows.push({ app, trigger })
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return rows.sort(
    (a, b) =>
      a.app.name.localeCompare(b.app.name) || a.trigger.trigger_name.localeCompare(b.trigger.trigger_name)
  )
}

const patterns = (includes, excludes) =>
  html`${includes.length > 0 ? includes.join(", ") : "—"}${excludes.length > 0 && html`<div class="muted">not ${excludes.join(", ")}</div>`}`

export function Triggers() {
  useTitle("Triggers")
  const { workspaceId } = useApp()
  const list = useLoad(() => loadTriggers(workspaceId), [workspaceId])
  const rows = list.data
  return html`
    <${PageTitle}>Triggers<//>
    <${ErrorMessage} error=${list.error} />
    ${list.loading && !rows && html`<p>Loading…</p>`}
    ${rows && rows.length === 0 && html`<p>No triggers. Pushes build nothing until a trigger says what to build.</p>`}
    ${
      rows &&
      rows.length > 0 &&
      html`<${TableRegion} label="Triggers">
        <table class="responsive">
          <thead>
            <tr>
              <th scope="col">Trigger</th>
              <th scope="col">App</th>
              <th scope="col">Repository</th>
              <th scope="col">Branches</th>
              <th scope="col">Paths</th>
              <th scope="col">Build command</th>
              <th scope="col">Root directory</th>
              <th scope="col">Caching</th>
            </tr>
          </thead>
          <tbody>
            ${rows.map(
              ({ app, trigger }) => html`<tr key=${trigger.trigger_uuid}>
                <th scope="row" data-label="Trigger">${trigger.trigger_name}</th>
                <td data-label="App"><a href=${`#/apps/${app.id}`}>${app.handle}</a></td>
                <td data-label="Repository"><code class="wrap">${trigger.repo_connection.repo_id || "any"}</code></td>
                <td data-label="Branches">${patterns(trigger.branch_includes, trigger.branch_excludes)}</td>
                <td data-label="Paths">${patterns(trigger.path_includes, trigger.path_excludes)}</td>
                <td data-label="Build command">${trigger.build_command ? html`<code class="wrap">${trigger.build_command}</code>` : "the app's"}</td>
                <td data-label="Root directory">${trigger.root_directory ? html`<code>${trigger.root_directory}</code>` : "the app's"}</td>
                <td data-label="Caching">${trigger.build_caching_enabled ? "on" : "off"}</td>
              </tr>`
            )}
          </tbody>
        </table>
      <//>`
    }
  `
}
