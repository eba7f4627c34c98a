/**
 * How long a failed delivery waits before its next attempt. Early retries come fast (a receiver
 * restarting), later ones spread over about a day (an outage), and then the delivery gives up.
 *
 * Jitter is proportional (±20 % of each delay), not "full" (anywhere from 0 to the delay): full jitter
 * would spread deliveries that failed together just as well, but could squeeze an endpoint's whole day
 * of retries into a few hours, and make the first retry come at once. With a random source of mean ½
 * the expected span is the nominal one.
 */
import { Duration } from "effect"

export type RetrySchedule =
  /** The delay after each failed attempt, in order: one attempt more than delays. */
  | { readonly delays: ReadonlyArray<Duration.Input> }
  /** `attempts` in all, waiting `base`, then twice as long each time, never more than `max`. */
  | { readonly attempts: number; readonly base: Duration.Input; readonly max: Duration.Input }

/**
 * 12 attempts over a nominal 21 h 52 m 35 s (the sum of the delays); with jitter, between 17 h 30 m 4 s
 * and 26 h 15 m 6 s.
 */
export const defaultSchedule: RetrySchedule = {
  delays: [
    "5 seconds",
    "30 seconds",
    "2 minutes",
    "5 minutes",
    "15 minutes",
    "30 minutes",
    "1 hour",
    "2 hours",
    "4 hours",
    "6 hours",
    "8 hours"
  ]
}

/** The share of each delay that jitter may add or take away. */
export const jitter = 0.2

/** How many attempts a delivery gets, the first one included. */
export const attempts = (schedule: RetrySchedule = defaultSchedule): number =>
  "delays" in schedule ? schedule.delays.length + 1 : schedule.attempts

/**
 * The wait after failed attempt number `attempt` (from 1) before the next one, or undefined when that
 * was the last. `random` returns a number in [0, 1), like `Math.random`.
 */
export const nextDelay = (
  attempt: number,
  random: () => number,
  schedule: RetrySchedule = defaultSchedule
): Duration.Duration | undefined => {
  if (!Number.isInteger(attempt) || attempt < 1 || attempt >= attempts(schedule)) return undefined
  const nominal =
    "delays" in schedule
      ? Duration.toMillis(schedule.delays[attempt - 1]!)
      : Math.min(Duration.toMillis(schedule.max), Duration.toMillis(schedule.base) * 2 ** (attempt - 1))
  return Duration.millis(Math.round(nominal * (1 - jitter + 2 * jitter * random())))
}
