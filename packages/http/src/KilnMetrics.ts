/**
 * Kiln's metrics in the Prometheus text format, kept by prom-client. `layer` provides core's `Metrics`,
 * which the engine reports to as it works (claims, slots, finished builds, stored logs, webhook attempts),
 * and the registry that `KilnHttp` serves at `GET /metrics` when its `metrics` option names a token; the
 * HTTP routes count their requests into it. Queue depth and running builds per workspace are read from
 * storage when scraped: one count per workspace and status, so a scrape costs two indexed counts per
 * workspace. Every figure is this process's; Prometheus sums processes, except the per-workspace gauges,
 * which every process reads alike from the shared storage (take one process's, or `max`).
 */
import { Access, Fields, Filter, Metrics, OrderBy, Query, Storage } from "@kiln/core"
import { Context, DateTime, Effect, Layer, Result } from "effect"
import * as Prom from "prom-client"

export interface KilnMetricsShape {
  readonly registry: Prom.Registry
  /** Counts one request: its route (the documented path, or `other`), method and status, and how long it took. */
  readonly request: (route: string, method: string, status: number, seconds: number) => void
  /** Reads the per-workspace gauges from storage, then answers the whole registry in Prometheus's text format. */
  readonly scrape: Effect.Effect<string, Storage.StorageError>
}

export class KilnMetrics extends Context.Service<KilnMetrics, KilnMetricsShape>()("@kiln/http/KilnMetrics") {}

/** Seconds buckets for queue waits and build durations: a second to an hour. */
const buildBuckets = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600]
/** Seconds buckets for claims and requests: a millisecond to ten seconds. */
const fastBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

const seconds = (from: DateTime.Utc | null, to: DateTime.Utc | null) =>
  from === null || to === null
    ? undefined
    : (DateTime.toEpochMillis(to) - DateTime.toEpochMillis(from)) / 1000

// The order of ids alone, ascending: pages follow each other by the last id.
const byId = OrderBy.complete<"id">([])

/** Every workspace's id, a page at a time in id order. */
const workspaceIds = (storage: Storage.StorageShape) =>
  Effect.gen(function* () {
    const ids: Array<string> = []
    while (true) {
      const last = ids.at(-1)
      const result = yield* storage.listWorkspaces(Access.all, {
        filter: undefined,
        orderBy: byId,
        limit: Query.maxLimit,
        cursor: last === undefined ? undefined : { direction: "after", values: [last] },
        countTotal: false
      })
      ids.push(...result.rows.map((workspace) => workspace.id))
      if (!result.hasNextPage) return ids
    }
  })

/** How many of a workspace's builds have `status`. */
const count = (storage: Storage.StorageShape, workspaceId: string, status: "pending" | "running") =>
  Effect.map(
    storage.listBuilds(Access.all, {
      filter: Filter.and([
        Result.getOrThrow(Filter.fromJson(Fields.builds, { workspaceId: { eq: workspaceId } })),
        Result.getOrThrow(Filter.fromJson(Fields.builds, { status: { eq: status } }))
      ]),
      orderBy: OrderBy.complete(OrderBy.defaultOrder),
      limit: 1,
      cursor: undefined
    }),
    (result) => result.total
  )

export const make: Effect.Effect<Metrics.MetricsShape & KilnMetricsShape, never, Storage.Storage> =
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const registry = new Prom.Registry()
    const registers = [registry]
    Prom.collectDefaultMetrics({ register: registry, prefix: "kiln_" })
    // Gauges prom-client names like counters, which `promtool check metrics` rejects: the rest are kept.
    for (const name of ["active_handles_total", "active_requests_total", "active_resources_total"]) {
      registry.removeSingleMetric(`kiln_nodejs_${name}`)
    }
    const counter = (name: string, help: string, labelNames: ReadonlyArray<string> = []) =>
      new Prom.Counter({ name, help, labelNames, registers })
    const gauge = (name: string, help: string, labelNames: ReadonlyArray<string> = []) =>
      new Prom.Gauge({ name, help, labelNames, registers })
    const histogram = (
      name: string,
      help: string,
      buckets: Array<number>,
      labelNames: ReadonlyArray<string> = []
    ) => new Prom.Histogram({ name, help, buckets, labelNames, registers })

    const queued = gauge("kiln_builds_queued", "Builds waiting for an engine, per workspace.", [
      "workspace_id"
    ])
    const running = gauge("kiln_builds_running", "Builds an engine is running, per workspace.", [
      "workspace_id"
    ])
    const finished = counter(
      "kiln_builds_finished_total",
      "Builds this process ran to their final state, by outcome.",
      ["outcome"]
    )
    const queueWait = histogram(
      "kiln_build_queue_wait_seconds",
      "From a build's creation until a slot of an engine started it, for builds this process finished.",
      buildBuckets
    )
    const duration = histogram(
      "kiln_build_duration_seconds",
      "From a slot starting a build to its final state, for builds this process finished.",
      buildBuckets
    )
    const claims = histogram(
      "kiln_claim_duration_seconds",
      "How long each of this engine's claim rounds took.",
      fastBuckets
    )
    const claimed = counter("kiln_builds_claimed_total", "Builds this engine claimed.")
    const slotsInUse = gauge("kiln_engine_slots_in_use", "This engine's slots running a build.")
    const slots = gauge("kiln_engine_slots", "This engine's slots.")
    const logLines = counter("kiln_log_lines_stored_total", "Build log lines this process stored.")
    const logBytes = counter("kiln_log_bytes_stored_total", "Bytes of build log lines this process stored.")
    const deliveries = counter(
      "kiln_webhook_delivery_attempts_total",
      "Webhook delivery attempts this process made, by result: delivered (2xx), rejected (another status), refused (a forbidden address), failed (no answer).",
      ["result"]
    )
    const requests = counter(
      "kiln_http_requests_total",
      "HTTP requests this process answered, by route, method and status.",
      ["route", "method", "status"]
    )
    const requestSeconds = histogram(
      "kiln_http_request_duration_seconds",
      "How long this process took to answer HTTP requests, by route and method.",
      fastBuckets,
      ["route", "method"]
    )

    const refreshActive = Effect.gen(function* () {
      const ids = yield* workspaceIds(storage)
      const counts = yield* Effect.forEach(
        ids,
        (id) => Effect.all([count(storage, id, "pending"), count(storage, id, "running")]),
        { concurrency: 4 }
      )
      // Set afresh: a workspace deleted since the last scrape leaves no stale series.
      queued.reset()
      running.reset()
      ids.forEach((id, n) => {
        queued.set({ workspace_id: id }, counts[n]![0])
        running.set({ workspace_id: id }, counts[n]![1])
      })
    })

    return {
      claimed: (latencyMs, builds) => {
        claims.observe(latencyMs / 1000)
        claimed.inc(builds)
      },
      slots: (inUse, capacity) => {
        slotsInUse.set(inUse)
        slots.set(capacity)
      },
      buildFinished: (build, heldMs) => {
        finished.inc({ outcome: build.outcome ?? "unknown" })
        // A build claimed ahead waited in the engine after its claim (`startedAt`): that is queue time too.
        const waited = seconds(build.createdAt, build.startedAt)
        if (waited !== undefined) queueWait.observe(waited + heldMs / 1000)
        const took = seconds(build.startedAt, build.completedAt)
        if (took !== undefined) duration.observe(Math.max(0, took - heldMs / 1000))
      },
      logsStored: (lines, bytes) => {
        logLines.inc(lines)
        logBytes.inc(bytes)
      },
      deliveryAttempted: (result) => deliveries.inc({ result }),
      registry,
      request: (route, method, status, took) => {
        requests.inc({ route, method, status: String(status) })
        requestSeconds.observe({ route, method }, took)
      },
      scrape: Effect.andThen(
        refreshActive,
        Effect.promise(() => registry.metrics())
      )
    }
  })

/** Core's `Metrics`, for the engine, and `KilnMetrics`, for the HTTP routes, over one registry. */
export const layer: Layer.Layer<Metrics.Metrics | KilnMetrics, never, Storage.Storage> = Layer.effectContext(
  Effect.map(make, (shape) => Context.make(Metrics.Metrics, shape).pipe(Context.add(KilnMetrics, shape)))
)
