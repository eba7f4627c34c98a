/**
 * A push, as a source host reports it, turned into builds: stored once as a `SourceEvent` (a redelivery
 * of the same delivery id creates nothing), then evaluated against each live trigger of the workspace
 * (`Trigger.evaluate`). A trigger that matches makes an `auto` build of the pushed commit; one whose
 * branch matches but whose paths do not records a `skipped` build with the reason; the others make
 * nothing. A push of a branch deletion (no commit) builds nothing.
 *
 * An app gets one build per push however many of its triggers match, since a build is unique per app and
 * source event: the oldest trigger that builds it, or else the oldest that skips it.
 */
import { Effect } from "effect"
import type * as Access from "./Access.ts"
import type { Build } from "./Build.ts"
import * as Fields from "./Fields.ts"
import type { WorkspaceId } from "./Id.ts"
import * as Query from "./Query.ts"
import type { SourceEvent } from "./SourceEvent.ts"
import { Storage } from "./Storage.ts"
import type { NotFound, StorageError } from "./StorageError.ts"
import * as Trigger from "./Trigger.ts"

export interface Push {
  readonly workspaceId: WorkspaceId
  /** The sender's id for this delivery: the same id again is a redelivery. */
  readonly deliveryId: string
  readonly repository: string
  /** Null for a push that names no branch (a tag). */
  readonly branch: string | null
  /** Null when the push deleted the branch. */
  readonly commitSha: string | null
  readonly changedPaths: ReadonlyArray<string>
  readonly author: string | null
  readonly message: string | null
}

export interface Received {
  readonly event: SourceEvent
  /** The delivery had been received before: nothing new was created. */
  readonly redelivered: boolean
  /** The builds the push made (queued or skipped), or made the first time it was received. */
  readonly builds: ReadonlyArray<Build>
  /** The triggers that made nothing, and why. */
  readonly ignored: ReadonlyArray<{ readonly triggerId: Trigger.Trigger["id"]; readonly reason: string }>
}

/** The builds a stored event made: at most one per app, so one page holds them for any sane workspace. */
const buildsOf = (access: Access.Access, event: SourceEvent) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const query = yield* Query.fromParams(Fields.builds, access, {
      filter: JSON.stringify({ sourceEventId: { eq: event.id } }),
      orderBy: JSON.stringify([{ createdAt: "asc" }])
    }).pipe(Effect.orDie)
    return (yield* storage.listBuilds(access, query)).rows
  })

export const receive = (
  access: Access.Access,
  push: Push
): Effect.Effect<Received, NotFound | StorageError, Storage> =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const { event, created } = yield* storage.recordSourceEvent(access, {
      workspaceId: push.workspaceId,
      deliveryId: push.deliveryId,
      kind: "push",
      repository: push.repository,
      branch: push.branch,
      commitSha: push.commitSha,
      changedPaths: push.changedPaths,
      author: push.author,
      message: push.message
    })
    if (!created) return { event, redelivered: true, builds: yield* buildsOf(access, event), ignored: [] }

    const builds: Array<Build> = []
    const ignored: Array<Received["ignored"][number]> = []
    // Per app, the first trigger that builds wins; failing that, the first that skips.
    const chosen = new Map<string, { readonly trigger: Trigger.Trigger; readonly skip: string | null }>()
    for (const trigger of yield* storage.activeTriggers(access, push.workspaceId)) {
      const decision =
        push.commitSha === null
          ? ({ _tag: "Ignore", reason: "the push names no commit" } as const)
          : Trigger.evaluate(trigger, push)
      const current = chosen.get(trigger.appId)
      if (decision._tag === "Ignore") ignored.push({ triggerId: trigger.id, reason: decision.reason })
      else if (current === undefined || (current.skip !== null && decision._tag === "Build")) {
        if (current !== undefined) {
          ignored.push({
            triggerId: current.trigger.id,
            reason: "another trigger of the app builds this push"
          })
        }
        chosen.set(trigger.appId, { trigger, skip: decision._tag === "Skip" ? decision.reason : null })
      } else {
        ignored.push({ triggerId: trigger.id, reason: "an earlier trigger of the app took this push" })
      }
    }
    for (const { trigger, skip } of chosen.values()) {
      const version = yield* storage.createAppVersion(access, {
        appId: trigger.appId,
        source: { type: "git", url: push.repository, commitSha: push.commitSha! }
      })
      const build = yield* storage
        .createBuild(access, {
          appVersionId: version.id,
          trigger: "auto",
          createdBy: push.author,
          sourceEventId: event.id,
          triggerMetadata: {
            ...Trigger.metadataFor(trigger, {
              source: "push",
              repository: push.repository,
              branch: push.branch,
              commitSha: push.commitSha,
              commitMessage: push.message,
              author: push.author,
              tokenId: null,
              tokenName: null
            })
          },
          skipReason: skip
        })
        // The version was made ready a moment ago and the event is this workspace's: neither can conflict.
        .pipe(Effect.catchTag("StorageConflict", Effect.die))
      builds.push(build)
    }
    return { event, redelivered: false, builds, ignored }
  })
