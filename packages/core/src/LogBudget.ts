/**
 * The per-build log budget (DESIGN.md §5): the first `headBytes` of a log are kept for good, the rest is a
 * tail of at most `tailBytes`; past it the oldest tail lines are deleted as new ones arrive. Readers see
 * `truncated: true` and, where lines are missing, a system line that says how many lines and bytes were
 * dropped.
 *
 * The bookkeeping is pure and shared by every storage: adapters persist `Stats` next to the lines and
 * supply the oldest stored tail lines when a trim is due.
 */
import { ByteSize, DateTime, Schema } from "effect"
import { BuildId } from "./Id.ts"
import { byteLength, type LogLine } from "./LogLine.ts"

export interface Budget {
  readonly headBytes: number
  readonly tailBytes: number
}

export const defaultBudget: Budget = { headBytes: 1024 * 1024, tailBytes: 9 * 1024 * 1024 }

export interface Stats {
  /** The highest seq stored (0 before the first line). */
  readonly lastSeq: number
  readonly headBytes: number
  /** The last seq of the head once it is full; `null` while the head still takes lines. */
  readonly headLastSeq: number | null
  readonly tailBytes: number
  readonly droppedLines: number
  readonly droppedBytes: number
  /** Lines in `(headLastSeq, droppedThroughSeq]` were dropped. */
  readonly droppedThroughSeq: number
  readonly truncatedAt: DateTime.Utc | null
}

export const emptyStats: Stats = {
  lastSeq: 0,
  headBytes: 0,
  headLastSeq: null,
  tailBytes: 0,
  droppedLines: 0,
  droppedBytes: 0,
  droppedThroughSeq: 0,
  truncatedAt: null
}

export class LogSequenceGap extends Schema.TaggedError<LogSequenceGap>()("LogSequenceGap", {
  buildId: BuildId,
  expected: Schema.Int,
  received: Schema.Int,
  message: Schema.String
}) {}

export interface AppendPlan {
  /** The lines not stored yet, to insert in order. */
  readonly fresh: ReadonlyArray<LogLine>
  readonly stats: Stats
  /** Bytes to delete from the oldest tail lines (those after `trimFromSeq`) to get back within budget. */
  readonly excessBytes: number
}

/**
 * Plans an append: lines whose seq is already stored are skipped (a retried batch is a no-op), the rest
 * must continue the sequence without a gap.
 */
export const planAppend = (
  buildId: BuildId,
  stats: Stats,
  lines: ReadonlyArray<LogLine>,
  budget: Budget
): AppendPlan | LogSequenceGap => {
  const fresh: Array<LogLine> = []
  let { lastSeq, headBytes, headLastSeq, tailBytes } = stats
  for (const line of lines) {
    if (line.seq <= lastSeq) continue
    if (line.seq !== lastSeq + 1) {
      return new LogSequenceGap({
        buildId,
        expected: lastSeq + 1,
        received: line.seq,
        message: `log lines of ${buildId} must continue at seq ${lastSeq + 1}, got ${line.seq}`
      })
    }
    const bytes = byteLength(line.text)
    if (headLastSeq === null && headBytes + bytes <= budget.headBytes) headBytes += bytes
    else {
      if (headLastSeq === null) headLastSeq = lastSeq
      tailBytes += bytes
    }
    lastSeq = line.seq
    fresh.push(line)
  }
  return {
    fresh,
    stats: { ...stats, lastSeq, headBytes, headLastSeq, tailBytes },
    excessBytes: Math.max(0, tailBytes - budget.tailBytes)
  }
}

/** The first seq a trim may delete: the oldest tail line still stored. */
export const trimFromSeq = (stats: Stats): number =>
  Math.max(stats.headLastSeq ?? 0, stats.droppedThroughSeq) + 1

/**
 * Chooses which of the oldest tail lines to drop to free `excessBytes`. `oldestTail` yields stored tail
 * lines from `trimFromSeq` upward and is consumed only as far as needed. Delete the lines with seq in
 * `[trimFromSeq(stats), deleteThroughSeq]`.
 */
export const planTrim = (
  stats: Stats,
  excessBytes: number,
  oldestTail: Iterable<{ readonly seq: number; readonly bytes: number }>,
  at: DateTime.Utc
): { readonly deleteThroughSeq: number; readonly stats: Stats } | undefined => {
  if (excessBytes <= 0) return undefined
  let freed = 0
  let lines = 0
  let through = stats.droppedThroughSeq
  for (const row of oldestTail) {
    freed += row.bytes
    lines += 1
    through = row.seq
    if (freed >= excessBytes) break
  }
  if (lines === 0) return undefined
  return {
    deleteThroughSeq: through,
    stats: {
      ...stats,
      tailBytes: stats.tailBytes - freed,
      droppedLines: stats.droppedLines + lines,
      droppedBytes: stats.droppedBytes + freed,
      droppedThroughSeq: through,
      truncatedAt: at
    }
  }
}

/** The system line a reader sees in place of the dropped lines; it takes the last dropped seq. */
export const truncationLine = (stats: Stats): LogLine => ({
  seq: stats.droppedThroughSeq,
  ts: stats.truncatedAt ?? DateTime.makeUnsafe(0),
  stream: "system",
  step: null,
  text: `[kiln] ${stats.droppedLines} lines (${ByteSize.format(ByteSize.bytes(stats.droppedBytes))}) dropped to stay within the log budget`
})

/**
 * Assembles a page from the stored lines after `afterSeq` (in order, at most `limit`), putting the
 * truncation line where the dropped lines were.
 */
export const page = (
  stored: ReadonlyArray<LogLine>,
  stats: Stats,
  afterSeq: number,
  limit: number
): ReadonlyArray<LogLine> => {
  if (stats.droppedLines === 0 || afterSeq >= stats.droppedThroughSeq) return stored
  const marker = truncationLine(stats)
  const at = stored.findIndex((line) => line.seq > marker.seq)
  const withMarker = at === -1 ? [...stored, marker] : [...stored.slice(0, at), marker, ...stored.slice(at)]
  return withMarker.slice(0, limit)
}
