import { Effect } from "effect"
import type { StorageShape } from "../Storage.ts"

/**
 * `appendAndTransition` as its steps in turn, for a storage with no cheaper way to make them one write:
 * the lines (when there are any), then each event.
 */
export const appendThenTransition =
  (storage: Pick<StorageShape, "appendLogs" | "transition">): StorageShape["appendAndTransition"] =>
  (id, fence, lines, [first, ...rest]) =>
    Effect.gen(function* () {
      if (lines.length > 0) yield* storage.appendLogs(id, fence, lines)
      let build = yield* storage.transition(id, first)
      for (const event of rest) build = yield* storage.transition(id, event)
      return build
    })
