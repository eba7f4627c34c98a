/**
 * A build is one attempt to turn an app version into an artifact. Its state changes only through
 * `BuildState.transition`; the schema's checks state the invariants every stored build satisfies.
 */
import { type DateTime, Result, Schema } from "effect"
import { type AppVersion, CommitSha } from "./AppVersion.ts"
import { boundText, Outcome, Phase, type State, Status, toStatus, transition } from "./BuildState.ts"
import { AppId, AppVersionId, BuildId, SourceEventId, WorkspaceId } from "./Id.ts"

export const BuildTrigger = Schema.Literals(["manual", "auto", "redeploy"])
export type BuildTrigger = typeof BuildTrigger.Type

export const StepStatus = Schema.Literals(["running", "succeeded", "failed", "cancelled"])
export type StepStatus = typeof StepStatus.Type

export const StepName = Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(200))

export const BuildStep = Schema.Struct({
  index: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  name: StepName,
  status: StepStatus,
  startedAt: Schema.DateTimeUtc,
  completedAt: Schema.NullOr(Schema.DateTimeUtc),
  exitCode: Schema.NullOr(Schema.Int),
  error: Schema.NullOr(Schema.String)
}).check(
  Schema.makeFilter((step) =>
    (step.status === "running") === (step.completedAt === null)
      ? undefined
      : { path: ["completedAt"], issue: "a step has completedAt exactly when it is no longer running" }
  )
)
export type BuildStep = typeof BuildStep.Type

export const maxMetadataDepth = 32
export const maxMetadataBytes = 64 * 1024

/** How deep a JSON value nests, counted without recursion (a caller controls the nesting). */
const depthOf = (value: unknown): number => {
  let deepest = 0
  const pending: Array<[unknown, number]> = [[value, 1]]
  while (pending.length > 0) {
    const [next, depth] = pending.pop()!
    if (typeof next !== "object" || next === null) continue
    deepest = Math.max(deepest, depth)
    if (deepest > maxMetadataDepth) return deepest
    for (const child of Object.values(next)) pending.push([child, depth + 1])
  }
  return deepest
}

/**
 * A caller's own data on a build: a JSON object within bounds every store and client can hold (at most
 * 32 levels deep and 64 KiB as JSON).
 */
export const Metadata = Schema.Record(Schema.String, Schema.Json).check(
  Schema.makeFilter((metadata) =>
    depthOf(metadata) > maxMetadataDepth
      ? `metadata nests deeper than ${maxMetadataDepth} levels`
      : Buffer.byteLength(JSON.stringify(metadata)) > maxMetadataBytes
        ? `metadata is larger than ${maxMetadataBytes} bytes as JSON`
        : undefined
  )
)
export type Metadata = typeof Metadata.Type

export const IdempotencyKey = Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(255))

const Timestamp = Schema.DateTimeUtc
const OptionalTimestamp = Schema.NullOr(Schema.DateTimeUtc)

export const Build = Schema.Struct({
  id: BuildId,
  workspaceId: WorkspaceId,
  /** The app this is a build of. */
  entityId: AppId,
  appVersionId: AppVersionId,
  /** Per app, gapless, from 1. */
  sequenceNumber: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
  phase: Phase,
  outcome: Schema.NullOr(Outcome),
  /** The canonical status, derived from phase and outcome. */
  status: Status,
  trigger: BuildTrigger,
  sourceEventId: Schema.NullOr(SourceEventId),
  idempotencyKey: Schema.NullOr(IdempotencyKey),
  /** Why a build failed, timed out or was lost; at most `BuildState.maxTextBytes`, cut with "…". */
  error: Schema.NullOr(Schema.String),
  metadata: Metadata,
  /** Who asked for it: a token's name, a push's author; at most `BuildState.maxTextBytes`, cut with "…". */
  createdBy: Schema.NullOr(Schema.String),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  /** When it was claimed (initializing). */
  startedAt: OptionalTimestamp,
  /** When its container or image build started (running). */
  runningAt: OptionalTimestamp,
  completedAt: OptionalTimestamp,
  cancelRequestedAt: OptionalTimestamp,
  /** At most `BuildState.maxTextBytes`, cut with "…". */
  cancelReason: Schema.NullOr(Schema.String),
  skipReason: Schema.NullOr(Schema.String),
  imageTag: Schema.NullOr(Schema.String),
  imageDigest: Schema.NullOr(Schema.String),
  commitSha: Schema.NullOr(CommitSha),
  triggerMetadata: Schema.NullOr(Metadata),
  /** The engine process holding the claim; kept after it stops, for the record. */
  owner: Schema.NullOr(Schema.String),
  /**
   * How many times it was claimed: 0 until its first claim. It runs at most once: a claim given back before
   * it started (`Release`) leaves it queued with its count, so the next claim's fence is a new one.
   */
  attempt: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  leaseExpiresAt: OptionalTimestamp
}).check(
  Schema.makeFilter((build) => {
    const issues: Array<Schema.FilterIssue> = []
    const stopped = build.phase === "stopped"
    const active = build.phase === "initializing" || build.phase === "running"
    if (stopped !== (build.outcome !== null))
      issues.push({ path: ["outcome"], issue: "a build has an outcome exactly when it is stopped" })
    else if (build.status !== toStatus({ phase: build.phase, outcome: build.outcome } as State))
      issues.push({ path: ["status"], issue: "status must follow from phase and outcome" })
    if (stopped !== (build.completedAt !== null))
      issues.push({ path: ["completedAt"], issue: "a build has completedAt exactly when it is stopped" })
    if (active !== (build.leaseExpiresAt !== null))
      issues.push({ path: ["leaseExpiresAt"], issue: "a build holds a lease exactly while it is claimed" })
    if (active && build.owner === null)
      issues.push({ path: ["owner"], issue: "a claimed build has an owner" })
    if (build.phase === "queued" && (build.startedAt !== null || build.runningAt !== null))
      issues.push({ path: ["startedAt"], issue: "a queued build has not started" })
    if (active && (build.attempt < 1 || build.startedAt === null))
      issues.push({ path: ["startedAt"], issue: "a claimed build has an attempt and a start time" })
    if (build.phase === "running" && build.runningAt === null)
      issues.push({ path: ["runningAt"], issue: "a running build has runningAt" })
    if (build.cancelReason !== null && build.cancelRequestedAt === null)
      issues.push({ path: ["cancelReason"], issue: "a cancel reason needs a cancel request" })
    return issues
  })
)
export type Build = typeof Build.Type

/** A build as every API and event shows it: the claim's lease details and the idempotency key stay inside. */
export const View = Build.mapFields(
  ({
    owner: _owner,
    attempt: _attempt,
    leaseExpiresAt: _lease,
    idempotencyKey: _key,
    phase: _phase,
    ...fields
  }) => fields
)
export type View = typeof View.Type

/** A build as `getBuild` returns it: with its steps in order. */
export interface BuildWithSteps extends Build {
  readonly steps: ReadonlyArray<BuildStep>
}

/** What a caller gives to create a build; the workspace, app and commit come from the version. */
export interface NewBuild {
  readonly appVersionId: AppVersionId
  readonly trigger: BuildTrigger
  readonly createdBy: string | null
  readonly metadata?: Metadata
  readonly triggerMetadata?: Metadata | null
  /** Creating twice for the same app and source event gives the same build. */
  readonly sourceEventId?: SourceEventId | null
  /** Creating twice with the same key in a workspace gives the same build. */
  readonly idempotencyKey?: string | null
  /** Create the build already stopped as `skipped`, with this reason (e.g. paths excluded by a trigger). */
  readonly skipReason?: string | null
}

/** A new build of a ready version: queued, or already stopped as `skipped` when the input says so. */
export const make = (
  id: BuildId,
  version: AppVersion,
  sequenceNumber: number,
  input: NewBuild,
  now: DateTime.Utc
): Build => {
  const queued: Build = {
    id,
    workspaceId: version.workspaceId,
    entityId: version.appId,
    appVersionId: version.id,
    sequenceNumber,
    phase: "queued",
    outcome: null,
    status: "pending",
    trigger: input.trigger,
    sourceEventId: input.sourceEventId ?? null,
    idempotencyKey: input.idempotencyKey ?? null,
    error: null,
    metadata: input.metadata ?? {},
    createdBy: boundText(input.createdBy),
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    runningAt: null,
    completedAt: null,
    cancelRequestedAt: null,
    cancelReason: null,
    skipReason: null,
    imageTag: null,
    imageDigest: null,
    commitSha: version.commitSha,
    triggerMetadata: input.triggerMetadata ?? null,
    owner: null,
    attempt: 0,
    leaseExpiresAt: null
  }
  if (input.skipReason === undefined || input.skipReason === null) return queued
  // A queued build always accepts Skip.
  return Result.getOrThrow(transition(queued, { _tag: "Skip", at: now, reason: input.skipReason }))
}
