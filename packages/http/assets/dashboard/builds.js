/**
 * The builds list: filters and sort kept in the URL (`#/builds?status=failed&sort=…`), keyset paging with
 * the page's cursors, and live updates from the event feed (new builds appear, statuses change).
 */
import { useEffect, useMemo, useRef, useState } from "preact/hooks"
import { getLive, listAll } from "./api.js"
import { isLive, subscribe, watchState } from "./feed.js"
import {
  between,
  ErrorMessage,
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
  useNow,
  useTitle
} from "./ui.js"

const pageSize = 25
export const buildStatuses = ["pending", "running", "completed", "failed", "cancelled", "skipped"]
const triggers = ["manual", "auto", "redeploy"]

/** Sort choices: the select's value is `field:direction`, sent as `orderBy=[{"field":"direction"}]`. */
const sorts = [
  ["createdAt:desc", "Newest first"],
  ["createdAt:asc", "Oldest first"],
  ["completedAt:desc_nulls_last", "Recently finished"],
  ["startedAt:desc_nulls_last", "Recently started"],
  ["sequenceNumber:desc", "Highest build number"]
]
const defaultSort = sorts[0][0]

/** The filters in the URL's query: app, status, trigger, by, from, to (local dates), sort, after/before. */
const filterKeys = ["app", "status", "trigger", "by", "from", "to", "sort"]
const readFilters = (query) =>
  Object.fromEntries([...filterKeys, "after", "before"].map((key) => [key, query.get(key) ?? ""]))

/** Local midnight of a `YYYY-MM-DD` date, `days` later, as an ISO timestamp. */
const localDay = (date, days = 0) => {
  const [y, m, d] = date.split("-").map(Number)
  return new Date(y, m - 1, d + days).toISOString()
}

/** The `filter` JSON for the date range: from the start of `from` to the end of `to`, local time. */
const createdAtFilter = ({ from, to }) => {
  const range = {}
  if (from) range.gte = localDay(from)
  if (to) range.lt = localDay(to, 1)
  return Object.keys(range).length > 0 ? JSON.stringify({ createdAt: range }) : undefined
}

const listParams = (filters, workspaceId) => {
  const [field, direction] = (filters.sort || defaultSort).split(":")
  return {
    limit: pageSize,
    workspace_id: workspaceId,
    app_id: filters.app,
    status: filters.status,
    trigger: filters.trigger,
    created_by: filters.by,
    filter: createdAtFilter(filters),
    orderBy: JSON.stringify([{ [field]: direction }]),
    after: filters.after,
    before: filters.before
  }
}

/** Whether a build belongs in the list the filters describe (for builds the feed brings). */
const matches = (build, filters, workspaceId) => {
  const created = Date.parse(build.createdAt)
  return (
    (!workspaceId || build.workspaceId === workspaceId) &&
    (!filters.app || build.entityId === filters.app) &&
    (!filters.status || build.status === filters.status) &&
    (!filters.trigger || build.trigger === filters.trigger) &&
    (!filters.by || build.createdBy === filters.by) &&
    (!filters.from || created >= Date.parse(localDay(filters.from))) &&
    (!filters.to || created < Date.parse(localDay(filters.to, 1)))
  )
}

/**
 * A page after a feed event: `{page, changed}` (`changed` the build whose status changed, or which is
 * new), or null when the event changes nothing here. Events are applied idempotently: a build is
 * replaced only by a newer version of itself, and a build the page does not show is added only by an
 * event after the page was asked for, only to the first page of the newest-first order, and only where
 * that order puts it: a build older than the last row of a full page (one that now matches the filter,
 * say) belongs on a later page.
 */
function applyEvent(page, event, { filters, workspaceId, loadedAt }) {
  const build = event.data?.build
  if (!page || !build) return null
  const index = page.data.findIndex((row) => row.id === build.id)
  if (event.type === "build.deleted") {
    if (index < 0) return null
    const data = page.data.filter((row) => row.id !== build.id)
    return {
      page: { ...page, data, pageInfo: { ...page.pageInfo, total: page.pageInfo.total - 1 } },
      changed: null
    }
  }
  if (index >= 0) {
    const old = page.data[index]
    if (Date.parse(build.updatedAt) <= Date.parse(old.updatedAt)) return null
    const data = page.data.map((row) => (row.id === build.id ? build : row))
    return { page: { ...page, data }, changed: old.status === build.status ? null : build }
  }
  const firstPageNewestFirst =
    (filters.sort || defaultSort) === defaultSort && !filters.after && !filters.before
  if (!firstPageNewestFirst || !isLive(event, loadedAt) || !matches(build, filters, workspaceId)) return null
  const at = page.data.findIndex((row) => newestFirst(build, row) < 0)
  if (at < 0 && page.pageInfo.hasNextPage) return null
  const data = at < 0 ? [...page.data, build] : page.data.toSpliced(at, 0, build)
  return {
    page: { ...page, data, pageInfo: { ...page.pageInfo, total: page.pageInfo.total + 1 } },
    changed: build
  }
}

/** The list's default order: newest first, ties broken by id in the same direction, as the API does. */
const newestFirst = (a, b) =>
  Date.parse(b.createdAt) - Date.parse(a.createdAt) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)

/** A text or date filter: edited locally, applied on change (Enter, leaving the field, picking a date). */
function FilterInput({ id, label, type = "text", value, onApply, ...rest }) {
  const [draft, setDraft] = useState(value)
  useEffect(() => setDraft(value), [value])
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <input
      id=${id}
      type=${type}
      value=${draft}
      onInput=${(event) => setDraft(event.currentTarget.value)}
      onChange=${(event) => onApply(event.currentTarget.value.trim())}
      ...${rest}
    />
  </div>`
}

function FilterSelect({ id, label, value, options, onApply, testid }) {
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <select id=${id} data-testid=${testid} value=${value} onChange=${(event) => onApply(event.currentTarget.value)}>
      ${options.map(([optionValue, text]) => html`<option value=${optionValue}>${text}</option>`)}
    </select>
  </div>`
}

export function BuildsList({ query }) {
  useTitle("Builds")
  const { workspaceId, session, announce } = useApp()
  const filters = readFilters(query)
  const listKey = `${query.toString()}|${workspaceId}`

  const apps = useLoad(() => listAll("/apps", { workspace_id: workspaceId }), [workspaceId])
  const appsById = useMemo(() => new Map((apps.data ?? []).map((app) => [app.id, app])), [apps.data])

  const loadedAt = useRef(0)
  // The events heard while each page asked for travels: its answer may be older than some of them.
  const hearing = useRef(new Set())
  const list = useLoad(async () => {
    const heard = []
    hearing.current.add(heard)
    try {
      const { data, since } = await getLive("/builds", listParams(filters, workspaceId))
      loadedAt.current = since
      const context = { filters, workspaceId, loadedAt: since }
      return heard.reduce((page, event) => applyEvent(page, event, context)?.page ?? page, data)
    } finally {
      hearing.current.delete(heard)
    }
  }, [listKey])

  // Live updates: apply each feed event to the page shown, and say what changed.
  const current = useRef({})
  current.current = { page: list.data, filters, workspaceId, appsById, loadedAt: loadedAt.current }
  useEffect(
    () =>
      subscribe((event) => {
        for (const heard of hearing.current) heard.push(event)
        const result = applyEvent(current.current.page, event, current.current)
        if (!result) return
        current.current.page = result.page
        list.setData(() => result.page)
        const build = result.changed
        if (build) {
          const app = current.current.appsById.get(build.entityId)
          announce(`Build #${build.sequenceNumber}${app ? ` of ${app.handle}` : ""} is ${build.status}.`)
        }
      }),
    [listKey]
  )
  const [feedState, setFeedState] = useState("connecting")
  useEffect(() => watchState(setFeedState), [])

  const apply = (changes) => navigate("builds", { ...filters, after: "", before: "", ...changes })
  const page = list.data
  const now = useNow(page?.data.some((build) => build.status === "running") ?? false)
  const filtered = filterKeys.some((key) => key !== "sort" && filters[key])

  return html`
    <${PageTitle}>Builds<//>
    <form class="filters" role="search" aria-label="Filter builds" onSubmit=${(event) => event.preventDefault()}>
      <${FilterSelect}
        id="filter-app"
        testid="filter-app"
        label="App"
        value=${filters.app}
        options=${[["", "All apps"], ...(apps.data ?? []).map((app) => [app.id, `${app.name} (${app.handle})`])]}
        onApply=${(app) => apply({ app })}
      />
      <${FilterSelect}
        id="filter-status"
        testid="filter-status"
        label="Status"
        value=${filters.status}
        options=${[["", "Any status"], ...buildStatuses.map((status) => [status, status])]}
        onApply=${(status) => apply({ status })}
      />
      <${FilterSelect}
        id="filter-trigger"
        testid="filter-trigger"
        label="Trigger"
        value=${filters.trigger}
        options=${[["", "Any trigger"], ...triggers.map((trigger) => [trigger, trigger])]}
        onApply=${(trigger) => apply({ trigger })}
      />
      <${FilterInput}
        id="filter-created-by"
        data-testid="filter-created-by"
        label="Created by"
        value=${filters.by}
        list="created-by-suggestions"
        placeholder="token name"
        autocomplete="off"
        onApply=${(by) => apply({ by })}
      />
      <datalist id="created-by-suggestions"><option value=${session.name}></option></datalist>
      <${FilterInput}
        id="filter-from"
        data-testid="filter-from"
        label="Created from"
        type="date"
        value=${filters.from}
        onApply=${(from) => apply({ from })}
      />
      <${FilterInput}
        id="filter-to"
        data-testid="filter-to"
        label="Created to"
        type="date"
        value=${filters.to}
        onApply=${(to) => apply({ to })}
      />
      <${FilterSelect}
        id="sort"
        testid="sort"
        label="Sort"
        value=${filters.sort || defaultSort}
        options=${sorts}
        onApply=${(sort) => apply({ sort: sort === defaultSort ? "" : sort })}
      />
      ${filtered && html`<div class="field field-action"><a href="#/builds">Clear filters</a></div>`}
    </form>

    <p class="list-meta">
      ${page && html`<span>${page.pageInfo.total} ${page.pageInfo.total === 1 ? "build" : "builds"}</span>`}
      <span class="feed-state">Live updates: ${feedState === "live" ? "on" : feedState}</span>
    </p>
    <${ErrorMessage} error=${list.error || apps.error} />
    ${page && page.data.length === 0 && html`<p>No builds${filtered ? " match these filters" : " yet"}.</p>`}
    ${
      page &&
      page.data.length > 0 &&
      html`<${TableRegion} label="Builds">
        <table class="responsive" data-testid="builds-table" aria-busy=${list.loading ? "true" : "false"}>
          <caption class="visually-hidden">Builds, ${(sorts.find(([value]) => value === (filters.sort || defaultSort)) ?? sorts[0])[1].toLowerCase()}</caption>
          <thead>
            <tr>
              <th scope="col">Build</th>
              <th scope="col">App</th>
              <th scope="col">Status</th>
              <th scope="col">Trigger</th>
              <th scope="col">Created by</th>
              <th scope="col">Created</th>
              <th scope="col">Duration</th>
              <th scope="col">Commit</th>
            </tr>
          </thead>
          <tbody>
            ${page.data.map((build) => html`<${BuildRow} key=${build.id} build=${build} app=${appsById.get(build.entityId)} now=${now} />`)}
          </tbody>
        </table>
      <//>`
    }
    <${Pager}
      pageInfo=${page?.pageInfo}
      onPrev=${() => navigate("builds", { ...filters, after: "", before: page.pageInfo.startCursor })}
      onNext=${() => navigate("builds", { ...filters, before: "", after: page.pageInfo.endCursor })}
    />
  `
}

function BuildRow({ build, app, now }) {
  return html`<tr data-testid="build-row" data-build-id=${build.id}>
    <th scope="row" data-label="Build"><a href=${`#/builds/${build.id}`}>#${build.sequenceNumber}</a></th>
    <td data-label="App">${app ? html`<a href=${`#/apps/${app.id}`}>${app.handle}</a>` : build.entityId}</td>
    <td data-label="Status"><${StatusBadge} status=${build.status} /></td>
    <td data-label="Trigger">${build.trigger}</td>
    <td data-label="Created by">${build.createdBy ?? "—"}</td>
    <td data-label="Created"><${Time} at=${build.createdAt} /></td>
    <td data-label="Duration">${formatDuration(between(build.startedAt, build.completedAt, now))}</td>
    <td data-label="Commit"><code>${shortSha(build.commitSha)}</code></td>
  </tr>`
}
