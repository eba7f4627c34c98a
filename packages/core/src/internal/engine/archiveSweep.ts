/**
 * Stored archives that no app version names removed, once at start and then at an interval; the source
 * store keeps those stored within its grace period.
 */
import { Effect, Schedule } from "effect"
import * as Access from "../../Access.ts"
import type { AppVersionField } from "../../Fields.ts"
import * as OrderBy from "../../OrderBy.ts"
import type { ListQuery } from "../../Query.ts"
import type { SourceStoreShape } from "../../SourceStore.ts"
import type { StorageShape } from "../../Storage.ts"

export interface ArchiveSweepInput {
  readonly storage: Pick<StorageShape, "listAppVersions">
  readonly sources: Pick<SourceStoreShape, "sweepArchives">
  readonly intervalMs: number
}

export const archiveSweepLoop = (input: ArchiveSweepInput): Effect.Effect<void> =>
  Effect.gen(function* () {
    // Many versions may name one archive, so a page of answers may not reach every name: ask again about the
    // names not found yet until a page comes back short. Each full page finds at least one name.
    const referencedAmong = (sha256s: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        const found = new Set<string>()
        let asking = sha256s
        while (asking.length > 0) {
          const page = yield* input.storage.listAppVersions(Access.all, archivesQuery(asking))
          for (const version of page.rows) if (version.commitSha !== null) found.add(version.commitSha)
          if (page.rows.length < asking.length) return found
          asking = asking.filter((sha256) => !found.has(sha256))
        }
        return found
      }).pipe(Effect.orElseSucceed(() => new Set(sha256s)))
    const removed = yield* input.sources.sweepArchives(referencedAmong)
    if (removed.length > 0) {
      yield* Effect.logInfo(`removed ${removed.length} archives no version names`).pipe(
        Effect.annotateLogs({ archives: removed.map((sha256) => sha256.slice(0, 8)).join(" ") })
      )
    }
  }).pipe(
    Effect.catch((error) => Effect.logWarning("archive sweep failed", error)),
    Effect.repeat(Schedule.spaced(`${input.intervalMs} millis`)),
    Effect.asVoid
  )

/** Archive versions that name one of these archives. */
const archivesQuery = (sha256s: ReadonlyArray<string>): ListQuery<AppVersionField> => ({
  filter: {
    _tag: "And",
    filters: [
      { _tag: "In", field: "sourceType", values: ["archive"], negate: false },
      { _tag: "In", field: "commitSha", values: sha256s, negate: false }
    ]
  },
  orderBy: OrderBy.complete(OrderBy.defaultOrder),
  limit: sha256s.length,
  cursor: undefined
})
