/**
 * Retention passes (`Retention`), once at start and then on a schedule. The storage's part runs in one
 * process at a time across processes sharing the store, under a named lease renewed between batches; each
 * batch is its own short transaction. Images are the runner's own engine's, so every process prunes its own.
 */
import { Clock, DateTime, Duration, Effect, Schedule } from "effect"
import * as Access from "../../Access.ts"
import type { App } from "../../App.ts"
import type { Build } from "../../Build.ts"
import type { AppField, BuildField } from "../../Fields.ts"
import * as Fields from "../../Fields.ts"
import * as OrderBy from "../../OrderBy.ts"
import * as Query from "../../Query.ts"
import * as Retention from "../../Retention.ts"
import type { BuiltImage, RunnerShape } from "../../Runner.ts"
import type { StorageShape } from "../../Storage.ts"

export interface RetentionInput {
  readonly storage: StorageShape
  readonly runner: Pick<RunnerShape, "images" | "removeImage">
  readonly owner: string
  readonly options: Retention.Options
}

/** The lease's name, and how long a pass holds it between batches. */
const leaseName = "kiln.retention"
const leaseMs = 60_000

export interface PassFigures {
  readonly logsExpired: number
  readonly buildsDeleted: number
  readonly eventsPruned: number
  readonly imagesRemoved: number
}

const at = (ms: number) => Effect.map(Clock.currentTimeMillis, (now) => DateTime.makeUnsafe(now - ms))

/** Every app, a page at a time. */
const everyApp = (storage: StorageShape) =>
  Effect.gen(function* () {
    const query: Query.ListQuery<AppField> = {
      filter: undefined,
      orderBy: OrderBy.complete(OrderBy.defaultOrder),
      limit: 500,
      cursor: undefined
    }
    const apps: Array<App> = []
    let next = query
    while (true) {
      const { rows } = yield* storage.listApps(Access.all, next)
      apps.push(...rows)
      if (rows.length < query.limit) return apps
      const values = Query.positionOf(Fields.apps, query.orderBy, rows.at(-1)!)
      next = { ...query, cursor: { direction: "after", values } }
    }
  })

/** One pass over the store: logs, builds and events, under the lease; answers zeros when another process holds it. */
const storagePass = (input: RetentionInput, batch: number) =>
  Effect.gen(function* () {
    const { storage, options, owner } = input
    const figures = { logsExpired: 0, buildsDeleted: 0, eventsPruned: 0 }
    const held = storage.takeLease(leaseName, owner, leaseMs)
    if (!(yield* held)) return figures
    /** Runs batches until one comes back short, renewing the lease before each; stops if it was lost. */
    const drain = (step: Effect.Effect<number, unknown>) =>
      Effect.gen(function* () {
        let total = 0
        while (yield* held) {
          const done = yield* step
          total += done
          if (done < batch) break
        }
        return total
      })
    const apps = yield* everyApp(storage)
    for (const app of apps) {
      const policy = Retention.resolve(options, app.workspaceId, app.id)
      if (policy.logsMs !== null) {
        const stoppedBefore = yield* at(policy.logsMs)
        figures.logsExpired += yield* drain(
          Effect.map(
            storage.expireLogs({ appId: app.id, stoppedBefore, limit: batch }),
            (builds) => builds.length
          )
        )
      }
      if (policy.keepBuilds !== null || policy.buildsMs !== null) {
        const createdBefore = policy.buildsMs === null ? null : yield* at(policy.buildsMs)
        figures.buildsDeleted += yield* drain(
          Effect.map(
            storage.deleteBuilds({ appId: app.id, keep: policy.keepBuilds, createdBefore, limit: batch }),
            (builds) => builds.length
          )
        )
      }
    }
    if (options.events !== undefined) {
      const before = yield* at(Duration.toMillis(options.events as Duration.Input))
      figures.eventsPruned = yield* drain(storage.pruneEvents(before, batch))
    }
    return figures
  })

/**
 * The images to remove: of every app with `keepImages`, all but those of its newest `keepImages` successful
 * builds; an image whose build retention deleted goes too. Pinned ones (by id or reference) always stay.
 */
export const imagesToRemove = (
  images: ReadonlyArray<BuiltImage>,
  builds: ReadonlyMap<string, Build>,
  keepOf: (build: Build) => number | null,
  pinned: ReadonlySet<string>
): ReadonlyArray<BuiltImage> => {
  const kept = new Set<string>()
  const byApp = Map.groupBy(
    images.filter((image) => builds.get(image.buildId)?.outcome === "success"),
    (image) => builds.get(image.buildId)!.entityId
  )
  for (const ofApp of byApp.values()) {
    const keep = keepOf(builds.get(ofApp[0]!.buildId)!)
    const newest = ofApp.sort(
      (a, b) => builds.get(b.buildId)!.sequenceNumber - builds.get(a.buildId)!.sequenceNumber
    )
    for (const image of keep === null ? newest : newest.slice(0, keep)) kept.add(image.id)
  }
  return images.filter((image) => {
    if (kept.has(image.id) || pinned.has(image.id) || image.references.some((ref) => pinned.has(ref)))
      return false
    const build = builds.get(image.buildId)
    // A build still there whose app keeps every image, or one not stopped yet, keeps its image.
    if (build !== undefined && (keepOf(build) === null || build.phase !== "stopped")) return false
    return true
  })
}

const imagesPass = (input: RetentionInput) =>
  Effect.gen(function* () {
    const { runner, storage, options } = input
    if (runner.images === undefined || runner.removeImage === undefined) return 0
    const remove = runner.removeImage
    const images = yield* runner.images
    if (images.length === 0) return 0
    const ids = [...new Set(images.map((image) => image.buildId))]
    const builds = new Map<string, Build>()
    for (let from = 0; from < ids.length; from += 100) {
      const chunk = ids.slice(from, from + 100)
      const query: Query.ListQuery<BuildField> = {
        filter: { _tag: "In", field: "id", values: chunk, negate: false },
        orderBy: OrderBy.complete(OrderBy.defaultOrder),
        limit: chunk.length,
        cursor: undefined
      }
      for (const build of (yield* storage.listBuilds(Access.all, query)).rows) builds.set(build.id, build)
    }
    const pinned = new Set(options.pinnedImages === undefined ? [] : yield* options.pinnedImages)
    const doomed = imagesToRemove(
      images,
      builds,
      (build) => Retention.resolve(options, build.workspaceId, build.entityId).keepImages,
      pinned
    )
    let removed = 0
    for (const image of doomed) {
      yield* remove(image).pipe(
        Effect.tap(() =>
          Effect.sync(() => {
            removed++
          })
        ),
        Effect.catch((error) => Effect.logWarning(`retention could not remove image ${image.id}`, error))
      )
    }
    return removed
  })

/** One whole pass: the store's part (if this process holds the lease), then this runner's images. */
export const retentionPass = (input: RetentionInput) =>
  Effect.gen(function* () {
    const batch = input.options.batchSize ?? 200
    const started = yield* Clock.currentTimeMillis
    const stored = yield* storagePass(input, batch)
    const keepsImages = [
      input.options,
      ...Object.values(input.options.workspaces ?? {}),
      ...Object.values(input.options.apps ?? {})
    ].some((policy) => policy.keepImages !== undefined)
    const imagesRemoved = keepsImages ? yield* imagesPass(input) : 0
    const figures: PassFigures = { ...stored, imagesRemoved }
    if (Object.values(figures).some((n) => n > 0)) {
      yield* Effect.logInfo(
        `retention: expired ${figures.logsExpired} logs, deleted ${figures.buildsDeleted} builds, ` +
          `pruned ${figures.eventsPruned} events and deliveries, removed ${figures.imagesRemoved} images ` +
          `in ${(yield* Clock.currentTimeMillis) - started} ms`
      )
    }
    return figures
  })

/** Passes at start and then every `every` (default 10 minutes); a failed pass is logged and the next one tries again. */
export const retentionLoop = (input: RetentionInput): Effect.Effect<void> =>
  retentionPass(input).pipe(
    Effect.catch((error) => Effect.logWarning("retention pass failed", error)),
    Effect.repeat(
      Schedule.spaced(
        Duration.millis(Duration.toMillis((input.options.every ?? "10 minutes") as Duration.Input))
      )
    ),
    Effect.asVoid
  )
