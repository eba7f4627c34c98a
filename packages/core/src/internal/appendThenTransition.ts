import { Effect } from "effect"
import type { StorageShape } from "../Storage.ts"

/**
 * `appendAndTransition` as its two steps in turn, for a storage with no cheaper way to make them one
 * write: the lines (when there are any), then the event.
 */
export const appendThenTransition =
  (storage: Pick<StorageShape, "appendLogs" | "transition">): StorageShape["appendAndTransition"] =>
  (id, fence, lines, event) =>
    Effect.andThen(
      lines.length === 0 ? Effect.void : storage.appendLogs(id, fence, lines),
      storage.transition(id, event)
    )
