/** Webhooks: the workspace's endpoints, and one endpoint's delivery log (newest first) with redelivery. */
import { useState } from "preact/hooks"
import { get, post } from "./api.js"
import {
  ErrorMessage,
  FormMessage,
  html,
  navigate,
  PageTitle,
  StatusBadge,
  TableRegion,
  Time,
  useApp,
  useLoad,
  useTitle
} from "./ui.js"

const deliveriesPage = 25

const typesText = (types) => (types.length === 0 ? "All events" : types.join(", "))

export function WebhooksList() {
  useTitle("Webhooks")
  const { workspaceId } = useApp()
  const list = useLoad(() => get("/webhooks", { workspace_id: workspaceId }), [workspaceId])
  const hooks = list.data?.data
  return html`
    <${PageTitle}>Webhooks<//>
    <${ErrorMessage} error=${list.error} />
    ${list.loading && !hooks && html`<p>Loading…</p>`}
    ${hooks && hooks.length === 0 && html`<p>No webhook endpoints.</p>`}
    ${
      hooks &&
      hooks.length > 0 &&
      html`<${TableRegion} label="Webhook endpoints">
        <table class="responsive">
          <thead>
            <tr>
              <th scope="col">Endpoint</th>
              <th scope="col">Events</th>
              <th scope="col">State</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            ${hooks.map(
              (hook) => html`<tr key=${hook.id}>
                <th scope="row" data-label="Endpoint"><a class="wrap" href=${`#/webhooks/${hook.id}`}>${hook.url}</a></th>
                <td data-label="Events">${typesText(hook.types)}</td>
                <td data-label="State"><${HookState} hook=${hook} /></td>
                <td data-label="Created"><${Time} at=${hook.createdAt} /></td>
              </tr>`
            )}
          </tbody>
        </table>
      <//>`
    }
  `
}

const HookState = ({ hook }) =>
  hook.enabled
    ? html`<span>Enabled</span>`
    : html`<span>Disabled${hook.disabledReason && html`: ${hook.disabledReason}`}</span>`

export function WebhookDetail({ id, query }) {
  const { canWrite, announce } = useApp()
  const before = query.get("before") ?? undefined
  const hook = useLoad(() => get(`/webhooks/${id}`), [id])
  const deliveries = useLoad(
    () => get(`/webhooks/${id}/deliveries`, { limit: deliveriesPage, before }),
    [id, before]
  )
  useTitle(hook.data ? `Webhook ${hook.data.url}` : "Webhook")
  const [message, setMessage] = useState(null)
  const [sending, setSending] = useState(null)

  const redeliver = async (delivery) => {
    setSending(delivery.id)
    setMessage(null)
    try {
      const queued = await post(`/webhooks/${id}/deliveries/${delivery.id}/redeliver`)
      deliveries.setData((page) => ({
        ...page,
        data: page.data.map((row) => (row.id === queued.id ? queued : row))
      }))
      announce(`The ${queued.eventType} delivery is queued to be sent again.`)
    } catch (error) {
      setMessage({ error: error.message })
    } finally {
      setSending(null)
    }
  }

  if (!hook.data)
    return html`<${PageTitle}>Webhook<//>
      ${hook.loading ? html`<p>Loading…</p>` : html`<${ErrorMessage} error=${hook.error} />`}`

  const rows = deliveries.data?.data
  return html`
    <${PageTitle}>Webhook endpoint<//>
    <dl class="details">
      <dt>URL</dt>
      <dd><code class="wrap">${hook.data.url}</code></dd>
      <dt>Events</dt>
      <dd>${typesText(hook.data.types)}</dd>
      <dt>State</dt>
      <dd><${HookState} hook=${hook.data} /></dd>
      <dt>Created</dt>
      <dd><${Time} at=${hook.data.createdAt} /></dd>
    </dl>

    <section>
      <div class="section-head">
        <h2>Deliveries</h2>
        <button type="button" class="secondary" onClick=${deliveries.reload} disabled=${deliveries.loading}>Refresh</button>
      </div>
      <${FormMessage} message=${message} />
      <${ErrorMessage} error=${deliveries.error} />
      ${rows && rows.length === 0 && html`<p>No deliveries${before ? " older than these" : " yet"}.</p>`}
      ${
        rows &&
        rows.length > 0 &&
        html`<${TableRegion} label="Deliveries">
          <table class="responsive">
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">Subject</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
                <th scope="col">Last response</th>
                <th scope="col">Next attempt</th>
                <th scope="col">Created</th>
                ${canWrite && html`<th scope="col"><span class="visually-hidden">Actions</span></th>`}
              </tr>
            </thead>
            <tbody>
              ${rows.map(
                (delivery) => html`<tr key=${delivery.id} data-delivery-id=${delivery.id}>
                  <th scope="row" data-label="Event">${delivery.eventType}</th>
                  <td data-label="Subject"><${Subject} subject=${delivery.subject} /></td>
                  <td data-label="Status"><${StatusBadge} status=${delivery.status} /></td>
                  <td data-label="Attempts">${delivery.attempts}</td>
                  <td data-label="Last response">
                    ${delivery.lastStatusCode ?? (delivery.lastAttemptAt ? "no answer" : "—")}
                    ${delivery.lastError && html`<div class="muted">${delivery.lastError}</div>`}
                  </td>
                  <td data-label="Next attempt"><${Time} at=${delivery.nextAttemptAt} /></td>
                  <td data-label="Created"><${Time} at=${delivery.createdAt} /></td>
                  ${
                    canWrite &&
                    html`<td data-label="Actions">
                      <button
                        type="button"
                        data-testid="redeliver"
                        disabled=${sending !== null}
                        aria-label=${`Redeliver: the ${delivery.eventType} delivery of ${new Date(delivery.createdAt).toLocaleString()}`}
                        onClick=${() => redeliver(delivery)}
                      >
                        ${sending === delivery.id ? "Sending…" : "Redeliver"}
                      </button>
                    </td>`
                  }
                </tr>`
              )}
            </tbody>
          </table>
        <//>`
      }
      <nav class="pager" aria-label="Pages">
        ${before && html`<a href=${`#/webhooks/${id}`}>← Newest</a>`}
        <button
          type="button"
          data-testid="page-next"
          disabled=${!rows || rows.length < deliveriesPage}
          onClick=${() => navigate(`webhooks/${id}`, { before: rows.at(-1).id })}
        >
          Older →
        </button>
      </nav>
    </section>
  `
}

/** A delivery's subject: a link when it is a build. */
const Subject = ({ subject }) =>
  subject.startsWith("bld_")
    ? html`<a href=${`#/builds/${subject}`}><code>${subject}</code></a>`
    : html`<code>${subject}</code>`
