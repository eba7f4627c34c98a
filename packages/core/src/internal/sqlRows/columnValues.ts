/**
 * How SQL columns hold domain values: timestamps as epoch milliseconds, JSON values as text exactly as
 * written.
 */
import { DateTime } from "effect"

export const utc = (millis: number): DateTime.Utc => DateTime.makeUnsafe(millis)
export const utcOrNull = (millis: number | null): DateTime.Utc | null =>
  millis === null ? null : utc(millis)
export const millis = (at: DateTime.Utc): number => DateTime.toEpochMillis(at)
export const millisOrNull = (at: DateTime.Utc | null): number | null => (at === null ? null : millis(at))
/** Rows are trusted: only a storage writes them, from values the domain already checked. */
export const parse = <A>(json: string): A => JSON.parse(json) as A
