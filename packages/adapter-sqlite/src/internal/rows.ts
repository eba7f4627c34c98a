/**
 * Rows as SQLite stores them. Postgres stores the same columns, so the mapping lives in core's `SqlRows`,
 * shared by both SQL storages; this module names it for the SQLite storage.
 */
import { SqlRows } from "@kiln/core"

export type WorkspaceRow = SqlRows.WorkspaceRow
export type AppRow = SqlRows.AppRow
export type AppVersionRow = SqlRows.AppVersionRow
export type SourceEventRow = SqlRows.SourceEventRow
export type TokenRow = SqlRows.TokenRow
export type BuildRow = SqlRows.BuildRow
export type BuildStepRow = SqlRows.BuildStepRow
export type LogLineRow = SqlRows.LogLineRow
export type LogStatsRow = SqlRows.LogStatsRow
export type TriggerRow = SqlRows.TriggerRow

export const {
  toWorkspace,
  fromWorkspace,
  toApp,
  fromApp,
  toAppVersion,
  fromAppVersion,
  toSourceEvent,
  fromSourceEvent,
  toToken,
  fromToken,
  toBuild,
  fromBuild,
  toBuildStep,
  fromBuildStep,
  toLogLine,
  fromLogLine,
  toLogStats,
  fromLogStats,
  toTrigger,
  fromTrigger
} = SqlRows
