/**
 * Retention (DESIGN.md §12): how long Kiln keeps what builds leave behind. A server-wide policy, with
 * per-workspace and per-app overrides field by field: stopped builds' logs expire (the build stays), stopped
 * builds beyond the newest N of their app or older than a cut-off are deleted with their steps and logs,
 * the event feed and delivery log are trimmed, and the images Kiln built are removed except the newest
 * successful ones of each app and those a host pins. Queued and running builds are never touched.
 *
 * The engine applies it on a schedule (`EngineOptions.retention`), one process at a time across processes
 * sharing a database, in small batches. Nothing is kept or deleted by default: an unset field keeps forever.
 */
import { Duration, type Effect, Option, Result, Schema } from "effect"

const isDuration = (input: string | number) =>
  Option.match(Duration.fromInput(input as Duration.Input), {
    onNone: () => false,
    onSome: (duration) => Duration.isFinite(duration) && Duration.toMillis(duration) > 0
  })

/** A positive, finite duration: milliseconds, or text such as `"30 days"` or `"12 hours"`. */
export const Period = Schema.Union([Schema.Number, Schema.String]).check(
  Schema.makeFilter(isDuration, {
    expected: 'a positive duration: milliseconds, or "<n> <unit>" (seconds, minutes, hours, days, weeks)'
  })
)
export type Period = typeof Period.Type

const Count = (minimum: number) => Schema.Int.check(Schema.isGreaterThanOrEqualTo(minimum))

/** What is kept of one app's builds; an unset field falls back to the workspace's, then the server's. */
export const Policy = Schema.Struct({
  /** A stopped build's log lines are deleted this long after it stopped; the build and its steps stay. */
  logs: Schema.optionalKey(Period),
  /** Stopped builds beyond the newest `keepBuilds` of their app (by sequence number) are deleted. */
  keepBuilds: Schema.optionalKey(Count(1)),
  /** Stopped builds created longer ago than this are deleted. */
  builds: Schema.optionalKey(Period),
  /** Images Kiln built are removed, except those of the app's newest `keepImages` successful builds. */
  keepImages: Schema.optionalKey(Count(0))
})
export type Policy = typeof Policy.Type

export const Settings = Schema.Struct({
  ...Policy.fields,
  /** Events (the feed) and finished webhook deliveries older than this are deleted. */
  events: Schema.optionalKey(Period),
  /** Overrides by workspace id. */
  workspaces: Schema.optionalKey(Schema.Record(Schema.String, Policy)),
  /** Overrides by app id; they win over their workspace's. */
  apps: Schema.optionalKey(Schema.Record(Schema.String, Policy)),
  /** How often a pass runs (the first one at start). Default 10 minutes. */
  every: Schema.optionalKey(Period),
  /** The most rows one write deletes, so that it never holds a lock a claim or a list waits on for long. Default 200. */
  batchSize: Schema.optionalKey(Count(1).check(Schema.isLessThanOrEqualTo(5000)))
})
export type Settings = typeof Settings.Type

/** What the engine is given: the settings, and the images a host wants kept whatever the policy says. */
export interface Options extends Settings {
  /** Image ids or references (`name:tag`) never removed, asked on each pass: what a host has deployed. */
  readonly pinnedImages?: Effect.Effect<ReadonlyArray<string>> | undefined
}

/** One app's policy in milliseconds and counts; `null` keeps forever. */
export interface Resolved {
  readonly logsMs: number | null
  readonly keepBuilds: number | null
  readonly buildsMs: number | null
  readonly keepImages: number | null
}

const millis = (period: Period | undefined) =>
  period === undefined ? null : Duration.toMillis(period as Duration.Input)

/** The app's policy: each field from the app's override, else its workspace's, else the server's. */
export const resolve = (settings: Settings, workspaceId: string, appId: string): Resolved => {
  const layers = [settings.apps?.[appId], settings.workspaces?.[workspaceId], settings].filter(
    (policy): policy is Policy => policy !== undefined
  )
  const pick = <K extends keyof Policy>(key: K): Policy[K] | undefined =>
    layers.find((policy) => key in policy)?.[key]
  return {
    logsMs: millis(pick("logs")),
    keepBuilds: pick("keepBuilds") ?? null,
    buildsMs: millis(pick("builds")),
    keepImages: pick("keepImages") ?? null
  }
}

/** Whether any policy in the settings could apply to an app at all: no pass runs when none does. */
export const isEmpty = (settings: Settings): boolean => {
  const policies = [
    settings,
    ...Object.values(settings.workspaces ?? {}),
    ...Object.values(settings.apps ?? {})
  ]
  return (
    settings.events === undefined &&
    policies.every(
      (policy) =>
        policy.logs === undefined &&
        policy.keepBuilds === undefined &&
        policy.builds === undefined &&
        policy.keepImages === undefined
    )
  )
}

const decodeSettings = Schema.decodeUnknownResult(Settings, { onExcessProperty: "error" })
const decodeJson = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.Unknown))

/**
 * Settings from JSON text (the server's `KILN_RETENTION`), e.g.
 * `{"logs":"30 days","keepBuilds":100,"keepImages":3,"apps":{"app_…":{"keepBuilds":500}}}`;
 * fails with a message that names what is wrong.
 */
export const fromJson = (text: string): Result.Result<Settings, string> =>
  Result.mapError(
    Result.flatMap(decodeJson(text), (json) => decodeSettings(json)),
    (error) => `invalid retention settings: ${error.message}`
  )

/** Checks settings given in code as `fromJson` checks text. */
export const validate = (settings: Settings): Result.Result<Settings, string> =>
  Result.mapError(decodeSettings(settings), (error) => `invalid retention settings: ${error.message}`)
