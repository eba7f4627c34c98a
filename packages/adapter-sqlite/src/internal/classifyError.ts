/**
 * The one place that turns what better-sqlite3 throws into a `StorageError`. The message names the reason
 * and SQLite's result code only: the driver's own message can quote SQL or values, so it stays in `cause`,
 * for operators.
 */
import { StorageError } from "@kiln/core"

type Reason = StorageError.StorageErrorReason

// Keyed by SQLite's primary result code; extended codes (SQLITE_IOERR_WRITE, SQLITE_BUSY_SNAPSHOT, …) are
// classified by their primary code.
const reasons: Readonly<Record<string, Reason>> = {
  SQLITE_BUSY: "Busy",
  SQLITE_LOCKED: "Busy",
  SQLITE_CANTOPEN: "Unavailable",
  SQLITE_IOERR: "Unavailable",
  SQLITE_FULL: "Unavailable",
  SQLITE_READONLY: "Unavailable",
  SQLITE_CORRUPT: "Corrupt",
  SQLITE_NOTADB: "Corrupt",
  SQLITE_SCHEMA: "Corrupt"
}

const explanations: Readonly<Record<Reason, string>> = {
  Busy: "another connection held the database lock past the busy timeout",
  Unavailable: "the database file cannot be opened, read or written",
  Corrupt: "the database file or its schema is not what this version of Kiln expects",
  Unknown: "the SQLite driver reported an unexpected error"
}

const codePattern = /^(SQLITE_[A-Z]+)(?:_[A-Z_]+)?$/

const codeOf = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined

/**
 * Classifies a failure of a driver call. A `StorageError` raised on purpose inside a transaction passes
 * through. While `opening`, an error without a SQLite code (better-sqlite3 throws a plain `TypeError` for a
 * missing directory) means the file cannot be reached.
 */
export const classifyError = (
  cause: unknown,
  context: { readonly opening?: boolean } = {}
): StorageError.StorageError => {
  if (cause instanceof StorageError.StorageError) return cause
  const code = codeOf(cause)
  const match = code === undefined ? null : codePattern.exec(code)
  const reason: Reason =
    match !== null ? (reasons[match[1]!] ?? "Unknown") : context.opening === true ? "Unavailable" : "Unknown"
  // Only a well-formed result code is echoed: anything else in `code` is not known to be safe to show.
  const suffix = match !== null ? ` (${match[0]})` : ""
  return new StorageError.StorageError({
    reason,
    message: `SQLite storage: ${explanations[reason]}${suffix}`,
    cause
  })
}
