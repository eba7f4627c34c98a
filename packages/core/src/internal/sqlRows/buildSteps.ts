/** A build step's row, keyed by its build and index. */
import type * as Build from "../../Build.ts"
import type * as Id from "../../Id.ts"
import { millis, millisOrNull, utc, utcOrNull } from "./columnValues.ts"

export interface BuildStepRow {
  readonly build_id: string
  readonly idx: number
  readonly name: string
  readonly status: string
  readonly started_at: number
  readonly completed_at: number | null
  readonly exit_code: number | null
  readonly error: string | null
}

export const toBuildStep = (row: BuildStepRow): Build.BuildStep => ({
  index: row.idx,
  name: row.name,
  status: row.status as Build.StepStatus,
  startedAt: utc(row.started_at),
  completedAt: utcOrNull(row.completed_at),
  exitCode: row.exit_code,
  error: row.error
})

export const fromBuildStep = (buildId: Id.BuildId, step: Build.BuildStep): BuildStepRow => ({
  build_id: buildId,
  idx: step.index,
  name: step.name,
  status: step.status,
  started_at: millis(step.startedAt),
  completed_at: millisOrNull(step.completedAt),
  exit_code: step.exitCode,
  error: step.error
})

export const stepColumns = [
  "build_id",
  "idx",
  "name",
  "status",
  "started_at",
  "completed_at",
  "exit_code",
  "error"
] as const satisfies ReadonlyArray<keyof BuildStepRow>
