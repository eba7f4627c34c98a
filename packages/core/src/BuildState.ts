/**
 * The build lifecycle as one pure state machine (DESIGN.md §2.1), and the canonical status its
 * `(phase, outcome)` pair maps to (the HTTP dialects' own words are `@kiln/http`'s).
 *
 * `transition` is the only way a build changes state. Storage applies it and then writes with
 * compare-and-set on the phase and the claim's `(owner, attempt)` fence, so a late write can never
 * overwrite a stopped build.
 */
import { DateTime, Result, Schema } from "effect"
import type { Build } from "./Build.ts"
import { BuildId } from "./Id.ts"
import type { LogLine } from "./LogLine.ts"

export const Phase = Schema.Literals(["queued", "initializing", "running", "stopped"])
export type Phase = typeof Phase.Type

export const Outcome = Schema.Literals(["success", "failure", "cancelled", "timed_out", "lost", "skipped"])
export type Outcome = typeof Outcome.Type

/** A phase and its outcome, as they can occur together: the outcome is set exactly when stopped. */
export type State =
  | { readonly phase: "queued" | "initializing" | "running"; readonly outcome: null }
  | { readonly phase: "stopped"; readonly outcome: Outcome }

/** The phases a build may hold a lease in: claimed and not yet stopped. */
export const activePhases = ["initializing", "running"] as const satisfies ReadonlyArray<Phase>
export const isActive = (phase: Phase): boolean => phase === "initializing" || phase === "running"

/** The canonical `/api` status. */
export const Status = Schema.Literals(["pending", "running", "completed", "failed", "cancelled", "skipped"])
export type Status = typeof Status.Type

const canonicalOutcome: Record<Outcome, Status> = {
  success: "completed",
  failure: "failed",
  timed_out: "failed",
  lost: "failed",
  cancelled: "cancelled",
  skipped: "skipped"
}

export const toStatus = (state: State): Status => {
  switch (state.phase) {
    case "queued":
      return "pending"
    case "initializing":
    case "running":
      return "running"
    case "stopped":
      return canonicalOutcome[state.outcome]
  }
}

// ---------------------------------------------------------------------------------------------------------
// Events and the transition function
// ---------------------------------------------------------------------------------------------------------

/** Who holds a claimed build: the engine process (`owner`) and the claim number (`attempt`). */
export interface Fence {
  readonly owner: string
  readonly attempt: number
}

interface Timed {
  readonly at: DateTime.Utc
}

export type BuildEvent =
  | (Timed & Fence & { readonly _tag: "Claim"; readonly leaseExpiresAt: DateTime.Utc })
  | (Timed & Fence & { readonly _tag: "Started" })
  /** The owner gives back a build it claimed ahead and never started: it is queued again. */
  | (Timed & Fence & { readonly _tag: "Release" })
  | (Timed &
      Fence & {
        readonly _tag: "Succeeded"
        readonly imageTag: string | null
        readonly imageDigest: string | null
      })
  | (Timed & Fence & { readonly _tag: "Failed"; readonly error: string })
  | (Timed & Fence & { readonly _tag: "TimedOut"; readonly error: string })
  | (Timed & Fence & { readonly _tag: "Stopped" })
  | (Timed & { readonly _tag: "Cancel"; readonly reason: string | null })
  | (Timed & { readonly _tag: "Skip"; readonly reason: string })
  | (Timed & { readonly _tag: "LeaseExpired" })

export type EventTag = BuildEvent["_tag"]

export class InvalidTransition extends Schema.TaggedError<InvalidTransition>()("InvalidTransition", {
  buildId: BuildId,
  phase: Phase,
  event: Schema.String,
  message: Schema.String
}) {}

/** The writer no longer holds the build: another attempt claimed it, it was reaped, or it stopped. */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  buildId: BuildId,
  owner: Schema.String,
  attempt: Schema.Int,
  message: Schema.String
}) {}

/** The `(phase, outcome)` pair of a build. */
export const stateOf = (build: Build): State => ({ phase: build.phase, outcome: build.outcome }) as State

/** Succeeds when the fence still holds the build: it is claimed, by this owner, under this attempt. */
export const checkFence = (build: Build, fence: Fence): Result.Result<Build, LeaseLost> =>
  isActive(build.phase) && build.owner === fence.owner && build.attempt === fence.attempt
    ? Result.succeed(build)
    : Result.fail(
        new LeaseLost({
          buildId: build.id,
          owner: fence.owner,
          attempt: fence.attempt,
          message: `build ${build.id} is no longer held by ${fence.owner} (attempt ${fence.attempt})`
        })
      )

/** A build moved to a new state, keeping `status` in step with it. */
const enter = (build: Build, state: State, at: DateTime.Utc, changes: Partial<Build> = {}): Build => ({
  ...build,
  ...changes,
  phase: state.phase,
  outcome: state.outcome,
  status: toStatus(state),
  updatedAt: at
})

/**
 * The most UTF-8 bytes a build keeps of a text that a client or a runner supplies (`error`, `cancelReason`,
 * `createdBy`): lists sort on them, so SQL storages index them, and PostgreSQL refuses an index entry
 * over about 2.7 KB. The whole text of an error stays in the build's log.
 */
export const maxTextBytes = 1024

const encoder = new TextEncoder()

/** `text` cut to at most `maxTextBytes` at a character boundary, ending in "…" when cut; null stays null. */
export const boundText = <T extends string | null>(text: T): T => {
  // A UTF-16 unit is at most three bytes of UTF-8.
  if (text === null || text.length * 3 <= maxTextBytes || encoder.encode(text).length <= maxTextBytes)
    return text
  const { read } = encoder.encodeInto(text, new Uint8Array(maxTextBytes - encoder.encode("…").length))
  return `${text.slice(0, read)}…` as T
}

const stop = (build: Build, outcome: Outcome, at: DateTime.Utc, changes: Partial<Build> = {}): Build =>
  enter(build, { phase: "stopped", outcome }, at, {
    ...changes,
    ...(changes.error === undefined ? {} : { error: boundText(changes.error) }),
    completedAt: at,
    leaseExpiresAt: null
  })

/**
 * Applies one event to a build. Owner events from a writer that does not hold an active claim fail with
 * `LeaseLost`; any other event the current phase does not accept fails with `InvalidTransition`.
 */
export const transition = (
  build: Build,
  event: BuildEvent
): Result.Result<Build, InvalidTransition | LeaseLost> => {
  const invalid = (message: string) =>
    Result.fail(new InvalidTransition({ buildId: build.id, phase: build.phase, event: event._tag, message }))

  if ("owner" in event && event._tag !== "Claim") {
    const held = checkFence(build, event)
    if (Result.isFailure(held)) return held
  }
  if (build.phase === "stopped") return invalid(`build ${build.id} is stopped (${build.outcome})`)

  switch (event._tag) {
    case "Claim":
      if (build.phase !== "queued") return invalid("only a queued build can be claimed")
      if (event.attempt !== build.attempt + 1) return invalid(`a claim must be attempt ${build.attempt + 1}`)
      return Result.succeed(
        enter(build, { phase: "initializing", outcome: null }, event.at, {
          owner: event.owner,
          attempt: event.attempt,
          leaseExpiresAt: event.leaseExpiresAt,
          startedAt: event.at
        })
      )
    case "Started":
      if (build.phase !== "initializing") return invalid("only an initializing build can start running")
      return Result.succeed(
        enter(build, { phase: "running", outcome: null }, event.at, { runningAt: event.at })
      )
    case "Release":
      if (build.phase !== "initializing") return invalid("only a build that has not started can be released")
      // Asked to stop meanwhile: it stops, as a reaped one would, rather than queueing again.
      if (build.cancelRequestedAt !== null) return Result.succeed(stop(build, "cancelled", event.at))
      return Result.succeed(
        enter(build, { phase: "queued", outcome: null }, event.at, {
          owner: null,
          leaseExpiresAt: null,
          startedAt: null
        })
      )
    case "Succeeded":
      return Result.succeed(
        stop(build, "success", event.at, { imageTag: event.imageTag, imageDigest: event.imageDigest })
      )
    case "Failed":
      return Result.succeed(stop(build, "failure", event.at, { error: event.error }))
    case "TimedOut":
      return Result.succeed(stop(build, "timed_out", event.at, { error: event.error }))
    case "Stopped":
      if (build.cancelRequestedAt === null)
        return invalid("a build stops as cancelled only after a cancel request")
      return Result.succeed(stop(build, "cancelled", event.at))
    case "Cancel":
      if (build.phase === "queued") {
        return Result.succeed(
          stop(build, "cancelled", event.at, {
            cancelRequestedAt: event.at,
            cancelReason: boundText(event.reason)
          })
        )
      }
      // The first request wins; repeating it changes nothing.
      if (build.cancelRequestedAt !== null) return Result.succeed(build)
      return Result.succeed({
        ...build,
        cancelRequestedAt: event.at,
        cancelReason: boundText(event.reason),
        updatedAt: event.at
      })
    case "Skip":
      if (build.phase !== "queued") return invalid("only a queued build can be skipped")
      return Result.succeed(stop(build, "skipped", event.at, { skipReason: event.reason }))
    case "LeaseExpired":
      if (!isActive(build.phase)) return invalid("only a claimed build has a lease to expire")
      if (build.leaseExpiresAt === null || DateTime.isLessThan(event.at, build.leaseExpiresAt)) {
        return invalid("the lease has not expired")
      }
      return Result.succeed(
        build.cancelRequestedAt !== null
          ? stop(build, "cancelled", event.at)
          : stop(build, "lost", event.at, { error: `lost: owner ${build.owner} stopped renewing its lease` })
      )
  }
}

/** What a cancelled build's log ends with, the reason given with the request included. */
export const cancelledText = (reason: string | null): string =>
  `[kiln] cancelled${reason ? `: ${reason}` : ""}`

/**
 * The system line a storage appends, as line `seq` and in the same write, to the log of a build it stops
 * on `Release` (a cancel was requested while an engine held it unstarted): no run will say it.
 */
export const releasedLine = (after: Build, seq: number): LogLine => ({
  seq,
  ts: after.updatedAt,
  stream: "system",
  step: null,
  text: cancelledText(after.cancelReason)
})

/**
 * The system line a storage appends, as line `seq` and in the same write, to the log of a build it stops
 * on `LeaseExpired`: the process that ran the build is gone, so nothing else would say what became of it.
 */
export const reapedLine = (before: Build, after: Build, seq: number): LogLine => {
  // Only a build with a lease stops on LeaseExpired.
  const why = `its process (owner ${before.owner}) stopped heartbeating; its lease expired at ${DateTime.formatIso(before.leaseExpiresAt!)}`
  return {
    seq,
    ts: after.updatedAt,
    stream: "system",
    step: null,
    text:
      after.outcome === "cancelled" ? `${cancelledText(after.cancelReason)} (${why})` : `[kiln] lost: ${why}`
  }
}
