/**
 * Assembles log lines from output chunks, which split lines (and UTF-8 characters) anywhere. A line ends
 * at `\n`; within a line a carriage return overwrites what came before it, as on a terminal, so progress
 * bars become their last state rather than a flood. A line that never ends is emitted in pieces of at
 * most `maxLength` characters, holding back `holdBack` characters so that a secret spanning a cut is
 * still whole in one piece when it is redacted.
 */
import { maxLineBytes } from "./LogLine.ts"

export interface LineBuffer {
  /** The lines this chunk completes. */
  readonly push: (chunk: Uint8Array | string) => ReadonlyArray<string>
  /** Whatever is left once the output ends. */
  readonly end: () => ReadonlyArray<string>
}

const lastState = (line: string): string => {
  const trimmed = line.endsWith("\r") ? line.slice(0, -1) : line
  const at = trimmed.lastIndexOf("\r")
  return at === -1 ? trimmed : trimmed.slice(at + 1)
}

export const make = (
  options: { readonly maxLength?: number; readonly holdBack?: number } = {}
): LineBuffer => {
  const maxLength = options.maxLength ?? maxLineBytes
  const holdBack = Math.min(options.holdBack ?? 0, Math.floor(maxLength / 2))
  const decoder = new TextDecoder()
  let pending = ""
  const drain = (final: boolean): Array<string> => {
    const lines: Array<string> = []
    let newline = pending.indexOf("\n")
    while (newline !== -1) {
      lines.push(lastState(pending.slice(0, newline)))
      pending = pending.slice(newline + 1)
      newline = pending.indexOf("\n")
    }
    while (pending.length > maxLength) {
      const cut = maxLength - holdBack
      lines.push(pending.slice(0, cut))
      pending = pending.slice(cut)
    }
    if (final && pending.length > 0) {
      lines.push(lastState(pending))
      pending = ""
    }
    return lines
  }
  return {
    push: (chunk) => {
      pending += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true })
      return drain(false)
    },
    end: () => {
      pending += decoder.decode()
      return drain(true)
    }
  }
}
