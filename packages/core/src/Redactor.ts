/**
 * Secret redaction: every occurrence of a secret value in a log line becomes `***`. Lines are redacted
 * whole (see `LineBuffer`), so a secret written in several chunks is still caught. Values shorter than
 * `minLength` are not secrets anyone can protect this way, and would mangle every line: they are skipped.
 */
export const mask = "***"
export const minLength = 4

export interface Redactor {
  readonly redact: (line: string) => string
  /** The longest secret's length: how much a line buffer must hold back at a forced cut. */
  readonly longest: number
}

export const make = (secrets: Iterable<string>): Redactor => {
  // Longest first, so a secret that contains another is masked whole.
  const values = [...new Set(secrets)]
    .filter((s) => s.length >= minLength)
    .sort((a, b) => b.length - a.length)
  return {
    longest: values[0]?.length ?? 0,
    redact: (line) =>
      values.length === 0 ? line : values.reduce((text, secret) => text.replaceAll(secret, mask), line)
  }
}
