/**
 * The one place that turns what `pg` throws into a `StorageError`. The message names the reason and the
 * SQLSTATE (or the socket's error code) only: the driver's own message can quote SQL or values, so it stays
 * in `cause`, for operators.
 */
import { StorageError } from "@kiln/core"

type Reason = StorageError.StorageErrorReason

// Keyed by SQLSTATE, then by its class (the first two characters).
const byCode: Readonly<Record<string, Reason>> = {
  "40001": "Busy", // serialization_failure
  "40P01": "Busy", // deadlock_detected
  "55P03": "Busy", // lock_not_available
  "57P01": "Unavailable", // admin_shutdown
  "57P02": "Unavailable", // crash_shutdown
  "57P03": "Unavailable", // cannot_connect_now
  XX001: "Corrupt", // data_corrupted
  XX002: "Corrupt" // index_corrupted
}

const byClass: Readonly<Record<string, Reason>> = {
  "08": "Unavailable", // connection exception
  "53": "Unavailable" // insufficient resources: disk full, out of memory, too many connections
}

// Socket errors on the way to the server.
const networkCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN"
])

// What `pg` and `pg-pool` throw, without a code, when a connection cannot be had or was lost.
const connectionLost =
  /^(Connection terminated|timeout exceeded when trying to connect|Cannot use a pool after calling end|Client has encountered a connection error|Client was closed)/

const explanations: Readonly<Record<Reason, string>> = {
  Busy: "a lock or serialization conflict with another transaction",
  Unavailable: "the database cannot be reached, or refused the connection",
  Corrupt: "the database reported corrupted data or indexes",
  Unknown: "the PostgreSQL driver reported an unexpected error"
}

const sqlState = /^[0-9A-Z]{5}$/

const codeOf = (cause: unknown): string | undefined => {
  if (typeof cause !== "object" || cause === null) return undefined
  if ("code" in cause && typeof cause.code === "string") return cause.code
  // Connecting to `localhost` tries every address; Node reports their failures together.
  if (cause instanceof AggregateError) return codeOf(cause.errors[0])
  return undefined
}

const classify = (cause: unknown, code: string | undefined, connecting: boolean): Reason => {
  if (code !== undefined && sqlState.test(code)) return byCode[code] ?? byClass[code.slice(0, 2)] ?? "Unknown"
  if (code !== undefined && networkCodes.has(code)) return "Unavailable"
  if (cause instanceof Error && connectionLost.test(cause.message)) return "Unavailable"
  return connecting ? "Unavailable" : "Unknown"
}

/**
 * Classifies a failure of a driver call. A `StorageError` raised on purpose inside a transaction passes
 * through. While `connecting`, an error without a code still means the server cannot be had.
 */
export const classifyError = (
  cause: unknown,
  context: { readonly connecting?: boolean } = {}
): StorageError.StorageError => {
  if (cause instanceof StorageError.StorageError) return cause
  const code = codeOf(cause)
  const reason = classify(cause, code, context.connecting === true)
  // Only a well-formed SQLSTATE or a known socket code is echoed: nothing else in `code` is known to be safe.
  const shown = code !== undefined && (sqlState.test(code) || networkCodes.has(code)) ? ` (${code})` : ""
  return new StorageError.StorageError({
    reason,
    message: `PostgreSQL storage: ${explanations[reason]}${shown}`,
    cause
  })
}
