/**
 * The memory storage's transactions. A body runs synchronously to its end (its statements are plain map
 * operations), so no other fiber sees it half done; each write records how to undo itself, and a body
 * that fails is undone in reverse, as a database rolls back.
 */
import { DateTime, Effect, Exit } from "effect"
import type * as AppVersion from "../AppVersion.ts"
import type * as Build from "../Build.ts"
import * as BuildState from "../BuildState.ts"
import * as Event from "../Event.ts"
import type * as Id from "../Id.ts"
import * as LogBudget from "../LogBudget.ts"
import { byteLength, type LogLine } from "../LogLine.ts"
import type * as SourceEvent from "../SourceEvent.ts"
import type { Transaction } from "../StorageDriver.ts"
import type { StorageError } from "../StorageError.ts"

export interface BuildLog {
  readonly lines: Array<LogLine>
  stats: LogBudget.Stats
  expiredAt: DateTime.Utc | null
}

/** The memory storage's tables that the build lifecycle writes. */
export interface Tables {
  readonly appSequences: Map<Id.AppId, number>
  readonly versions: Map<Id.AppVersionId, AppVersion.AppVersion>
  readonly events: ReadonlyMap<Id.SourceEventId, SourceEvent.SourceEvent>
  readonly builds: Map<Id.BuildId, Build.Build>
  readonly steps: Map<Id.BuildId, Array<Build.BuildStep>>
  readonly logs: Map<Id.BuildId, BuildLog>
  /** The event feed, in the order written: an event's cursor is its position, from 1; pruned ones leave a hole. */
  readonly feed: Array<Event.Stored | undefined>
}

const bySequence = (a: Build.Build, b: Build.Build) => a.sequenceNumber - b.sequenceNumber

const byAge = (a: { readonly createdAt: DateTime.Utc; readonly id: string }, b: typeof a) =>
  DateTime.toEpochMillis(a.createdAt) - DateTime.toEpochMillis(b.createdAt) ||
  (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

const makeTransaction = (tables: Tables, undo: Array<() => void>, at: DateTime.Utc): Transaction => {
  const { appSequences, versions, events, builds, steps, logs, feed } = tables
  const set = <K, V>(map: Map<K, V>, key: K, value: V) => {
    const had = map.has(key)
    const previous = map.get(key)
    undo.push(() => (had ? map.set(key, previous as V) : map.delete(key)))
    map.set(key, value)
  }
  const remove = <K, V>(map: Map<K, V>, key: K) => {
    if (!map.has(key)) return
    const previous = map.get(key) as V
    undo.push(() => map.set(key, previous))
    map.delete(key)
  }
  return {
    now: Effect.succeed(at),
    lockBuild: (id) => Effect.sync(() => builds.get(id)),
    writeBuild: (before, after) =>
      Effect.sync(() => {
        const stored = builds.get(before.id)
        if (
          stored === undefined ||
          stored.phase !== before.phase ||
          stored.owner !== before.owner ||
          stored.attempt !== before.attempt
        ) {
          return false
        }
        set(builds, after.id, after)
        return true
      }),
    logStats: (id) => Effect.sync(() => logs.get(id)?.stats ?? LogBudget.emptyStats),
    tailLineSizes: (id, fromSeq, limit) =>
      Effect.sync(() => {
        const lines = logs.get(id)?.lines ?? []
        const start = lines.findIndex((line) => line.seq >= fromSeq)
        return start < 0
          ? []
          : lines.slice(start, start + limit).map((line) => ({ seq: line.seq, bytes: byteLength(line.text) }))
      }),
    writeLog: (id, write) =>
      Effect.sync(() => {
        let log = logs.get(id)
        if (log === undefined) {
          log = { lines: [], stats: LogBudget.emptyStats, expiredAt: null }
          set(logs, id, log)
        }
        const { lines, stats } = log
        const start = lines.findIndex((line) => line.seq >= write.deleteFrom)
        const end = lines.findIndex((line) => line.seq > write.deleteThrough)
        const deleted =
          start < 0 || write.deleteThrough < write.deleteFrom
            ? []
            : lines.splice(start, (end < 0 ? lines.length : end) - start)
        lines.push(...write.lines)
        log.stats = write.stats
        undo.push(() => {
          lines.splice(lines.length - write.lines.length, write.lines.length)
          if (deleted.length > 0) lines.splice(start, 0, ...deleted)
          log.stats = stats
        })
      }),
    upsertStep: (id, step) =>
      Effect.sync(() => {
        const list = (steps.get(id) ?? []).filter((existing) => existing.index !== step.index)
        list.push(step)
        list.sort((a, b) => a.index - b.index)
        set(steps, id, list)
      }),
    insertEvents: (written) =>
      Effect.sync(() => {
        const start = feed.length
        for (const event of written) feed.push({ ...event, cursor: Event.cursorOf(feed.length + 1) })
        undo.push(() => feed.splice(start))
      }),
    logsToExpire: ({ appId, stoppedBefore, limit }) =>
      Effect.sync(() =>
        [...builds.values()]
          .filter(
            (build) =>
              build.entityId === appId &&
              build.phase === "stopped" &&
              build.completedAt !== null &&
              DateTime.isLessThan(build.completedAt, stoppedBefore) &&
              (logs.get(build.id)?.expiredAt ?? null) === null
          )
          .sort(bySequence)
          .slice(0, limit)
      ),
    expireLogs: (ids, at) =>
      Effect.sync(() => {
        for (const id of ids) {
          const log = logs.get(id)
          set(logs, id, { lines: [], stats: log?.stats ?? LogBudget.emptyStats, expiredAt: at })
        }
      }),
    buildsToDelete: ({ appId, keep, createdBefore, limit }) =>
      Effect.sync(() => {
        const ofApp = [...builds.values()].filter((build) => build.entityId === appId).sort(bySequence)
        const kept = new Set(keep === null ? ofApp : ofApp.slice(-keep))
        return ofApp
          .filter(
            (build) =>
              build.phase === "stopped" &&
              ((keep !== null && !kept.has(build)) ||
                (createdBefore !== null && DateTime.isLessThan(build.createdAt, createdBefore)))
          )
          .slice(0, limit)
      }),
    deleteBuilds: (deleted) =>
      Effect.sync(() => {
        for (const build of deleted) {
          remove(builds, build.id)
          remove(steps, build.id)
          remove(logs, build.id)
        }
        const built = new Set([...builds.values()].map((build) => build.appVersionId))
        for (const id of new Set(deleted.map((build) => build.appVersionId))) {
          const version = versions.get(id)
          if (version === undefined || built.has(id)) continue
          const newest = [...versions.values()]
            .filter((other) => other.appId === version.appId)
            .reduce((a, b) => (byAge(a, b) < 0 ? b : a))
          if (newest.id !== id) remove(versions, id)
        }
      }),
    versionsToBuild: (ids) => Effect.sync(() => ids.map((id) => versions.get(id))),
    sourceEventWorkspace: (id) => Effect.sync(() => events.get(id)?.workspaceId),
    existingBuild: (lookup) =>
      Effect.sync(() => {
        let first: Build.Build | undefined
        for (const build of builds.values()) {
          const matches =
            (lookup.idempotencyKey !== null &&
              build.workspaceId === lookup.workspaceId &&
              build.idempotencyKey === lookup.idempotencyKey) ||
            (lookup.sourceEventId !== null &&
              build.entityId === lookup.appId &&
              build.sourceEventId === lookup.sourceEventId)
          if (matches && (first === undefined || byAge(build, first) < 0)) first = build
        }
        return first
      }),
    nextSequences: (takes) =>
      Effect.sync(() =>
        takes.map(({ appId, count }) => {
          const taken = appSequences.get(appId) ?? 0
          set(appSequences, appId, taken + count)
          return taken + 1
        })
      ),
    insertBuilds: (inserted) =>
      Effect.sync(() => {
        for (const build of inserted) {
          set(builds, build.id, build)
          set(steps, build.id, [])
        }
      }),
    activeCounts: Effect.sync(() => {
      const byWorkspace = new Map<string, number>()
      const byApp = new Map<string, number>()
      for (const build of builds.values()) {
        if (!BuildState.isActive(build.phase)) continue
        byWorkspace.set(build.workspaceId, (byWorkspace.get(build.workspaceId) ?? 0) + 1)
        byApp.set(build.entityId, (byApp.get(build.entityId) ?? 0) + 1)
      }
      return { byWorkspace, byApp }
    }),
    queuedOldest: (limit) =>
      Effect.sync(() =>
        [...builds.values()]
          .filter((build) => build.phase === "queued")
          .sort(byAge)
          .slice(0, limit)
      ),
    expiredLeases: (now) =>
      Effect.sync(() =>
        [...builds.values()].filter(
          (build) =>
            BuildState.isActive(build.phase) &&
            build.leaseExpiresAt !== null &&
            !DateTime.isLessThan(now, build.leaseExpiresAt)
        )
      )
  }
}

/**
 * Runs a body as one transaction over the tables: synchronously, with the caller's services (its
 * clock), undone whole if it fails.
 */
export const transactionOn =
  (tables: Tables, now: Effect.Effect<DateTime.Utc>) =>
  <A, Err>(body: (tx: Transaction) => Effect.Effect<A, Err>): Effect.Effect<A, Err | StorageError> =>
    Effect.flatMap(Effect.context<never>(), (context) =>
      Effect.flatMap(now, (at) =>
        Effect.suspend(() => {
          const undo: Array<() => void> = []
          const exit = Effect.runSyncExitWith(context)(body(makeTransaction(tables, undo, at)))
          if (Exit.isFailure(exit)) for (const step of undo.reverse()) step()
          return exit
        })
      )
    )
