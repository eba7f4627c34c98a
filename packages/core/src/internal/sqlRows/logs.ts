/** A build's log lines and the budget's running totals (`LogBudget.Stats`), one row per build. */
import type * as Id from "../../Id.ts"
import type * as LogBudget from "../../LogBudget.ts"
import type * as LogLine from "../../LogLine.ts"
import { millis, millisOrNull, utc, utcOrNull } from "./columnValues.ts"

export interface LogLineRow {
  readonly seq: number
  readonly ts: number
  readonly stream: string
  readonly step: string | null
  readonly text: string
}

export const toLogLine = (row: LogLineRow): LogLine.LogLine => ({
  seq: row.seq,
  ts: utc(row.ts),
  stream: row.stream as LogLine.LogStream,
  step: row.step,
  text: row.text
})

export const fromLogLine = (
  buildId: Id.BuildId,
  line: LogLine.LogLine
): LogLineRow & { build_id: string } => ({
  build_id: buildId,
  seq: line.seq,
  ts: millis(line.ts),
  stream: line.stream,
  step: line.step,
  text: line.text
})

export interface LogStatsRow {
  readonly build_id: string
  readonly last_seq: number
  readonly head_bytes: number
  readonly head_last_seq: number | null
  readonly tail_bytes: number
  readonly dropped_lines: number
  readonly dropped_bytes: number
  readonly dropped_through_seq: number
  readonly truncated_at: number | null
  /** Set by retention; never written with the bookkeeping. */
  readonly expired_at?: number | null
}

export const toLogStats = (row: LogStatsRow): LogBudget.Stats => ({
  lastSeq: row.last_seq,
  headBytes: row.head_bytes,
  headLastSeq: row.head_last_seq,
  tailBytes: row.tail_bytes,
  droppedLines: row.dropped_lines,
  droppedBytes: row.dropped_bytes,
  droppedThroughSeq: row.dropped_through_seq,
  truncatedAt: utcOrNull(row.truncated_at)
})

/** When retention expired the log, from its bookkeeping row (none: never). */
export const expiredAtOf = (row: LogStatsRow | null | undefined) => utcOrNull(row?.expired_at ?? null)

export const fromLogStats = (buildId: Id.BuildId, stats: LogBudget.Stats): LogStatsRow => ({
  build_id: buildId,
  last_seq: stats.lastSeq,
  head_bytes: stats.headBytes,
  head_last_seq: stats.headLastSeq,
  tail_bytes: stats.tailBytes,
  dropped_lines: stats.droppedLines,
  dropped_bytes: stats.droppedBytes,
  dropped_through_seq: stats.droppedThroughSeq,
  truncated_at: millisOrNull(stats.truncatedAt)
})

export const logStatsColumns = [
  "build_id",
  "last_seq",
  "head_bytes",
  "head_last_seq",
  "tail_bytes",
  "dropped_lines",
  "dropped_bytes",
  "dropped_through_seq",
  "truncated_at"
] as const satisfies ReadonlyArray<keyof LogStatsRow>
