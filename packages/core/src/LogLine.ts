/**
 * Log lines: per build, a `seq` gapless from 1, with a timestamp, the stream it came from, the step it
 * belongs to and its text (at most 64 KiB of UTF-8; longer output is split).
 */
import { type DateTime, Schema } from "effect"
import { StepName } from "./Build.ts"

export const LogStream = Schema.Literals(["stdout", "stderr", "system"])
export type LogStream = typeof LogStream.Type

export const maxLineBytes = 64 * 1024

export const LogLine = Schema.Struct({
  seq: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
  ts: Schema.DateTimeUtc,
  stream: LogStream,
  step: Schema.NullOr(StepName),
  text: Schema.String
})
export type LogLine = typeof LogLine.Type

const encoder = new TextEncoder()

/** The UTF-8 size of a text, which is what log budgets count. */
export const byteLength = (text: string): number => {
  // Most log text is ASCII; counting code units is exact there and far cheaper than encoding.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the range is the point
  return /^[\u0000-\u007f]*$/.test(text) ? text.length : encoder.encode(text).length
}

/**
 * Splits a text into pieces of at most `maxLineBytes` UTF-8 bytes, never inside a code point.
 * Most texts come back as a single piece.
 */
export const split = (text: string, maxBytes: number = maxLineBytes): ReadonlyArray<string> => {
  if (text.length * 3 <= maxBytes || byteLength(text) <= maxBytes) return [text]
  const pieces: Array<string> = []
  let start = 0
  let bytes = 0
  for (let i = 0; i < text.length; ) {
    const code = text.codePointAt(i)!
    const units = code > 0xffff ? 2 : 1
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4
    if (bytes + size > maxBytes) {
      pieces.push(text.slice(start, i))
      start = i
      bytes = 0
    }
    bytes += size
    i += units
  }
  pieces.push(text.slice(start))
  return pieces
}

/** A page of a build's log, as `readLogs` returns it. */
export interface LogPage {
  readonly lines: ReadonlyArray<LogLine>
  /** True when lines were dropped to stay within the build's log budget. */
  readonly truncated: boolean
  /** The highest seq stored so far for the build (0 when it has no lines). */
  readonly lastSeq: number
  /** When retention deleted the log's lines; `null` while it is kept. */
  readonly expiredAt: DateTime.Utc | null
}
