import { Effect } from "effect"
import type { Build } from "../../Build.ts"

/** Logs a step in a build's life, annotated with the build and its app. */
export const logProgress = (
  message: string,
  build: Build,
  extra: Record<string, unknown> = {}
): Effect.Effect<void> =>
  Effect.logInfo(message).pipe(Effect.annotateLogs({ buildId: build.id, appId: build.entityId, ...extra }))
