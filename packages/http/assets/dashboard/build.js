/**
 * One build: its status (kept live by the log stream's status messages and the event feed), outcome,
 * timings, steps, image and source, its log, and cancel and rebuild for roles that may write.
 */
import { useEffect, useRef, useState } from "preact/hooks"
import { get, getLive, post } from "./api.js"
import { isLive, subscribe } from "./feed.js"
import { LogView } from "./log.js"
import {
  between,
  ErrorMessage,
  FormMessage,
  formatDuration,
  html,
  navigate,
  PageTitle,
  StatusBadge,
  TableRegion,
  Time,
  useApp,
  useLoad,
  useNow,
  useTitle
} from "./ui.js"

const isActive = (status) => status === "pending" || status === "running"

export function BuildPage({ id }) {
  const { canWrite, announce } = useApp()
  const loadedAt = useRef(0)
  const detail = useLoad(async () => {
    const { data, since } = await getLive(`/builds/${id}`)
    loadedAt.current = since
    return data
  }, [id])
  const build = detail.data
  useTitle(build ? `Build #${build.sequenceNumber}` : "Build")

  const version = useLoad(
    async () => build && get(`/app-versions/${build.appVersionId}`),
    [build?.appVersionId]
  )
  const app = useLoad(async () => build && get(`/apps/${build.entityId}`), [build?.entityId])
  const [deleted, setDeleted] = useState(false)

  // Many signals can say "something changed" at once: reload the build (with its steps) once for them.
  const refreshTimer = useRef(0)
  const refresh = () => {
    clearTimeout(refreshTimer.current)
    refreshTimer.current = setTimeout(detail.reload, 300)
  }
  useEffect(() => () => clearTimeout(refreshTimer.current), [])

  useEffect(
    () =>
      subscribe((event) => {
        // By the address's id while the build loads: an event then still brings a reload.
        if (event.data?.build?.id !== (detail.data?.id ?? id) || !isLive(event, loadedAt.current)) return
        if (event.type === "build.deleted") setDeleted(true)
        else refresh()
      }),
    [id, detail.data?.id]
  )

  // Say each change of status once it is known, whichever signal brought it.
  const lastStatus = useRef(null)
  useEffect(() => {
    if (!build) return
    if (lastStatus.current !== null && lastStatus.current !== build.status)
      announce(`Build #${build.sequenceNumber} is now ${build.status}.`)
    lastStatus.current = build.status
  }, [build?.status])

  const onStreamStatus = (status) => {
    detail.setData((current) => current && { ...current, status })
    refresh()
  }

  const [busy, setBusy] = useState(false)
  const [message, setMessage] = useState(null)
  const act = async (action) => {
    setBusy(true)
    setMessage(null)
    try {
      await action()
    } catch (error) {
      setMessage({ error: error.message })
    } finally {
      setBusy(false)
    }
  }
  const cancel = () =>
    act(async () => {
      const answer = await post(`/builds/${id}/cancel`, {})
      setMessage(answer.success ? { ok: "Cancellation requested." } : { error: answer.message })
      refresh()
    })
  const rebuild = () =>
    act(async () => {
      const next = await post(`/builds/${id}/redeploy`)
      navigate(`builds/${next.id}`)
    })

  const now = useNow(build?.status === "running")

  if (!build)
    return html`<${PageTitle}>Build<//>
      ${detail.loading ? html`<p>Loading…</p>` : html`<${ErrorMessage} error=${detail.error} />`}`

  return html`
    <${PageTitle}>Build #${build.sequenceNumber}${app.data ? ` of ${app.data.name}` : ""}<//>
    ${deleted && html`<p class="notice" role="status">This build was deleted under the retention policy.</p>`}
    <div class="build-head">
      <${StatusBadge} status=${build.status} testid="build-status" />
      ${
        canWrite &&
        html`<div class="actions">
          ${
            isActive(build.status) &&
            html`<button type="button" class="danger" data-testid="cancel-build" disabled=${busy || build.cancelRequestedAt !== null} onClick=${cancel}>
              ${build.cancelRequestedAt ? "Cancel requested" : "Cancel build"}
            </button>`
          }
          <button type="button" data-testid="rebuild" disabled=${busy} onClick=${rebuild}>Rebuild</button>
        </div>`
      }
    </div>
    <${FormMessage} message=${message} />
    <${ErrorMessage} error=${detail.error} />

    <section>
      <h2>Details</h2>
      <dl class="details">
        <dt>Outcome</dt>
        <dd>${build.outcome ?? "Not finished yet"}</dd>
        <dt>App</dt>
        <dd>${app.data ? html`<a href=${`#/apps/${app.data.id}`}>${app.data.name} (${app.data.handle})</a>` : build.entityId}</dd>
        <dt>Trigger</dt>
        <dd>${build.trigger}</dd>
        <dt>Created by</dt>
        <dd>${build.createdBy ?? "—"}</dd>
        <dt>Queued</dt>
        <dd><${Time} at=${build.createdAt} /></dd>
        <dt>Started</dt>
        <dd><${Time} at=${build.startedAt} /></dd>
        <dt>Finished</dt>
        <dd><${Time} at=${build.completedAt} /></dd>
        <dt>Waited</dt>
        <dd>${formatDuration(between(build.createdAt, build.startedAt, now))}</dd>
        <dt>Ran</dt>
        <dd>${formatDuration(between(build.startedAt, build.completedAt, now))}</dd>
        <dt>Image</dt>
        <dd>${build.imageTag ? html`<code class="wrap">${build.imageTag}</code>` : "—"}</dd>
        ${build.imageDigest && html`<dt>Image digest</dt><dd><code class="wrap">${build.imageDigest}</code></dd>`}
        <dt>Source</dt>
        <dd><${Source} version=${version.data} commitSha=${build.commitSha} /></dd>
        ${build.error && html`<dt>Error</dt><dd>${build.error}</dd>`}
        ${build.cancelReason && html`<dt>Cancel reason</dt><dd>${build.cancelReason}</dd>`}
        ${build.skipReason && html`<dt>Skipped because</dt><dd>${build.skipReason}</dd>`}
      </dl>
    </section>

    <section>
      <h2>Steps</h2>
      ${build.steps.length === 0 ? html`<p>No steps yet.</p>` : html`<${Steps} steps=${build.steps} now=${now} />`}
    </section>

    <section>
      <h2>Log</h2>
      <${LogView} key=${build.id} buildId=${build.id} onStatus=${onStreamStatus} />
    </section>
  `
}

/** Where the build's source came from: a git commit, or an uploaded archive named by its SHA-256. */
function Source({ version, commitSha }) {
  if (!version) return html`<code class="wrap">${commitSha ?? "—"}</code>`
  const sha = version.commitSha ?? commitSha
  if (version.source.type === "git")
    return html`<span>
      Git <code class="wrap">${version.source.url}</code>${version.source.ref && html` at <code>${version.source.ref}</code>`}
      <br />commit <code class="wrap">${sha ?? "not resolved yet"}</code>
      ${version.source.message && html`<br /><span class="muted">${version.source.message}</span>`}
    </span>`
  return html`<span>
    Uploaded archive${version.source.sizeBytes !== null && ` (${version.source.sizeBytes.toLocaleString()} bytes)`}
    <br />sha256 <code class="wrap">${sha ?? "not uploaded yet"}</code>
  </span>`
}

function Steps({ steps, now }) {
  return html`<${TableRegion} label="Steps">
    <table class="responsive">
      <thead>
        <tr>
          <th scope="col">#</th>
          <th scope="col">Step</th>
          <th scope="col">Status</th>
          <th scope="col">Started</th>
          <th scope="col">Duration</th>
          <th scope="col">Exit code</th>
          <th scope="col">Error</th>
        </tr>
      </thead>
      <tbody>
        ${steps.map(
          (step) => html`<tr key=${step.index}>
            <td data-label="#">${step.index + 1}</td>
            <th scope="row" data-label="Step">${step.name}</th>
            <td data-label="Status"><${StatusBadge} status=${step.status} /></td>
            <td data-label="Started"><${Time} at=${step.startedAt} /></td>
            <td data-label="Duration">${formatDuration(between(step.startedAt, step.completedAt, now))}</td>
            <td data-label="Exit code">${step.exitCode ?? "—"}</td>
            <td data-label="Error">${step.error ?? "—"}</td>
          </tr>`
        )}
      </tbody>
    </table>
  <//>`
}
