/**
 * What a storage adapter implements (DESIGN.md §10). Core owns the build lifecycle — create with its
 * sequence number and idempotency, claim, heartbeat, fenced transition, cancel, reap, steps, and the log
 * append under its budget — once, in `makeStorage`, over this driver: a transaction, a locked read of a
 * build, a compare-and-set write, and the queries. An adapter answers the entity queries (`Queries`) in
 * its own SQL and may offer fast paths (`FastPaths`) for the hottest operations; the state machine and
 * the log budget are never its business.
 */
import type { DateTime, Effect, Scope } from "effect"
import type { AppVersion } from "./AppVersion.ts"
import type { Build, BuildStep } from "./Build.ts"
import type { Fence } from "./BuildState.ts"
import type { Change } from "./Change.ts"
import type { ActiveCounts, ClaimRequest } from "./Claim.ts"
import type { Event } from "./Event.ts"
import type { AppId, AppVersionId, BuildId, EventId, SourceEventId, WorkspaceId } from "./Id.ts"
import { makeStorage as make } from "./internal/lifecycle/makeStorage.ts"
import type { Stats } from "./LogBudget.ts"
import type { LogLine } from "./LogLine.ts"
import type { BuildDeletion, LogExpiry, StorageOptions, StorageShape } from "./Storage.ts"
import type { StorageError } from "./StorageError.ts"

type E<A> = Effect.Effect<A, StorageError>

/** The size of a stored log line, as the budget's trim reads it. */
export interface LineSize {
  readonly seq: number
  readonly bytes: number
}

/** One append's writes, applied together: insert `lines`, delete stored lines in `[deleteFrom, deleteThrough]`, store `stats`. */
export interface LogWrite {
  readonly lines: ReadonlyArray<LogLine>
  readonly deleteFrom: number
  /** Below `deleteFrom` when nothing is deleted. */
  readonly deleteThrough: number
  readonly stats: Stats
  /** The hint this append publishes, for a driver that tells other processes within the write. */
  readonly change: Change
}

/** Where a new build would repeat one already created: the same key in the workspace, or the same push for the app. */
export interface BuildLookup {
  readonly workspaceId: WorkspaceId
  readonly idempotencyKey: string | null
  readonly appId: AppId
  readonly sourceEventId: SourceEventId | null
}

/**
 * The statements of one transaction. Everything read in it stays as read until it ends: a driver locks
 * what it reads (`FOR UPDATE`) or holds the database's write lock for the whole transaction.
 */
export interface Transaction {
  /** The transaction's clock: the database's where it has one, since leases are taken and reaped on it. */
  readonly now: E<DateTime.Utc>
  /** The build, locked until the transaction ends; `undefined` when there is none. */
  readonly lockBuild: (id: BuildId) => E<Build | undefined>
  /**
   * Writes `after`'s state columns (`SqlRows.buildStateColumns`) if the row still has `before`'s phase,
   * owner and attempt; answers whether it did. Publishes `Change.buildChanged(after)` to other processes
   * if the driver has them.
   */
  readonly writeBuild: (before: Build, after: Build) => E<boolean>
  /** The log budget's bookkeeping of a build (`LogBudget.emptyStats` before its first line). */
  readonly logStats: (id: BuildId) => E<Stats>
  /** The sizes of the stored lines from `fromSeq` on, oldest first, at most `limit`. */
  readonly tailLineSizes: (id: BuildId, fromSeq: number, limit: number) => E<ReadonlyArray<LineSize>>
  readonly writeLog: (id: BuildId, write: LogWrite) => E<void>
  /** Inserts the step, or replaces the one with the same index. */
  readonly upsertStep: (id: BuildId, step: BuildStep) => E<void>
  /**
   * Stores events in this transaction, after every event already in the feed, in the order given;
   * publishes `EventsWritten` to other processes if the driver has them.
   */
  readonly insertEvents: (events: ReadonlyArray<Event>) => E<void>

  /**
   * The versions builds are being created of, in the order asked (`undefined` for a missing one), locking
   * what makes creations of one app's builds take turns (on SQL, the apps' rows), so sequence numbers and
   * idempotency checks see every build before. Several are locked in one fixed order (by app id), so two
   * batches of creations never wait on each other in a cycle.
   */
  readonly versionsToBuild: (ids: ReadonlyArray<AppVersionId>) => E<ReadonlyArray<AppVersion | undefined>>
  readonly sourceEventWorkspace: (id: SourceEventId) => E<WorkspaceId | undefined>
  /** Of the builds the lookup matches, the one created first (ids break ties); a keyed lookup takes turns per workspace. */
  readonly existingBuild: (lookup: BuildLookup) => E<Build | undefined>
  /**
   * Takes `count` sequence numbers of each app for good (an app's first build is 1), answering the first
   * of each, in the order asked; the apps are distinct.
   */
  readonly nextSequences: (
    takes: ReadonlyArray<{ readonly appId: AppId; readonly count: number }>
  ) => E<ReadonlyArray<number>>
  /**
   * Inserts new builds, several when creations are batched; publishes `Change.buildChanged` of each to
   * other processes if the driver has them.
   */
  readonly insertBuilds: (builds: ReadonlyArray<Build>) => E<void>

  /** Up to `limit` stopped builds of the expiry whose logs have not expired, locked; may skip ones another transaction holds. */
  readonly logsToExpire: (request: LogExpiry) => E<ReadonlyArray<Build>>
  /** Marks the builds' logs expired at `at` (logged or not) and deletes their lines. */
  readonly expireLogs: (ids: ReadonlyArray<BuildId>, at: DateTime.Utc) => E<void>
  /** Up to `limit` stopped builds the deletion names, oldest first (by sequence), locked; may skip held ones. */
  readonly buildsToDelete: (request: BuildDeletion) => E<ReadonlyArray<Build>>
  /**
   * Deletes the builds with their steps, log lines and bookkeeping, then those of their versions that no
   * build references any more, except each app's newest version.
   */
  readonly deleteBuilds: (builds: ReadonlyArray<Build>) => E<void>

  /** Makes claims with caps take turns across processes; not needed where transactions already take turns. */
  readonly lockClaims?: E<void> | undefined
  /** Claimed, unstopped builds per workspace and per app. */
  readonly activeCounts: E<ActiveCounts>
  /** Queued builds, oldest first (`createdAt`, then id), at most `limit`; a driver may skip ones another claimer holds. */
  readonly queuedOldest: (limit: number) => E<ReadonlyArray<Build>>
  /** Active builds whose lease expired by `at`, locked; a driver may leave ones another transaction holds. */
  readonly expiredLeases: (at: DateTime.Utc) => E<ReadonlyArray<Build>>
}

/** What a log read needs, as one snapshot: the build's workspace, the budget's bookkeeping, the stored lines. */
export interface StoredLog {
  readonly workspaceId: WorkspaceId
  readonly stats: Stats
  /** Stored lines with seq after the one asked for, in order, at most the limit. */
  readonly lines: ReadonlyArray<LogLine>
  /** When retention expired the log. */
  readonly expiredAt: DateTime.Utc | null
}

/** The operations core implements on top of the driver. */
export type LifecycleOperation =
  | "createBuild"
  | "claimNext"
  | "heartbeat"
  | "transition"
  | "requestCancel"
  | "reapExpired"
  | "recordStep"
  | "appendLogs"
  | "appendAndTransition"
  | "readLogs"
  | "expireLogs"
  | "deleteBuilds"
  | "changes"

/** Everything else a storage answers: the entities, reads and lists, in the adapter's own statements. */
export type Queries = Omit<StorageShape, LifecycleOperation>

/**
 * An owner write planned from what this process last wrote of a build, for `FastPaths.writeKnown`: an
 * append that must find the build still held by its fence with `expectedLastSeq` as its last stored seq,
 * then a state change that must find the state columns exactly as `state.before`.
 */
export interface KnownWrite {
  readonly id: BuildId
  readonly append?:
    | {
        readonly fence: Fence
        readonly expectedLastSeq: number
        readonly lines: ReadonlyArray<LogLine>
        readonly stats: Stats
      }
    | undefined
  readonly state?: { readonly before: Build; readonly after: Build } | undefined
  /** The events the state change announces, stored with it (as `insertEvents` would). */
  readonly events: ReadonlyArray<Event>
  /** The hints the write publishes. */
  readonly changes: ReadonlyArray<Change>
}

/**
 * A driver's cheaper ways to do what core would otherwise do in a transaction. Each must store exactly
 * what the transaction would; the conformance suites hold both paths to the same results.
 */
export interface FastPaths {
  /**
   * Claims without caps: `queuedOldest` + the `Claim` transition + `writeBuild`, on the database clock,
   * storing in the same transaction (as `insertEvents` would) what `Event.forClaim` makes of each claimed
   * build, oldest first, under the ids `eventIds` answers (at least as many as `request.max`).
   */
  readonly claimOldest?:
    | ((
        request: ClaimRequest,
        eventIds: (count: number) => ReadonlyArray<EventId>
      ) => E<ReadonlyArray<Build>>)
    | undefined
  /** Renews a lease in one statement; `undefined` when it renewed nothing (core then finds out why). */
  readonly heartbeat?: ((id: BuildId, fence: Fence, leaseMs: number) => E<Build | undefined>) | undefined
  /**
   * Stores a write planned from known state, all of it or nothing, and answers whether it did; a write
   * that misses (the build changed meanwhile) takes the transaction path. A driver may batch concurrent
   * calls into one statement.
   */
  readonly writeKnown?: ((write: KnownWrite) => E<boolean>) | undefined
}

/** `ListenError`: how hearing other processes can fail to start (never, for a driver without them). */
export interface Driver<ListenError = never> {
  /** Names the storage in operator messages, e.g. "PostgreSQL storage". */
  readonly name: string
  /**
   * Runs the body in one transaction, committed when it succeeds and rolled back when it fails. A driver
   * may retry the whole body while it fails with a retryable `StorageError`.
   */
  readonly transaction: <A, Err>(
    body: (tx: Transaction) => Effect.Effect<A, Err>
  ) => Effect.Effect<A, Err | StorageError>
  /** A build's log from `afterSeq` on, as one snapshot; `undefined` when the build does not exist. */
  readonly readLog: (id: BuildId, afterSeq: number, limit: number) => E<StoredLog | undefined>
  readonly queries: Queries
  readonly fastPaths?: FastPaths | undefined
  /**
   * Hears other processes' changes for the life of the scope, handing each to `publish`. A driver that
   * has no other processes leaves it out.
   */
  readonly listen?:
    | ((publish: (change: Change) => void) => Effect.Effect<void, ListenError, Scope.Scope>)
    | undefined
}

/** A `Storage` from a driver: core's lifecycle over the driver's transactions and queries. */
export const makeStorage: <ListenError = never>(
  driver: Driver<ListenError>,
  options?: StorageOptions
) => Effect.Effect<StorageShape, ListenError, Scope.Scope> = make
