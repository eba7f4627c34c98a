/**
 * Builds written straight into a Kiln SQLite file, in the adapter's own rows, a transaction per 20,000:
 * a million take seconds, where creating each through storage takes about a millisecond.
 */
import type { Build } from "@kiln/core"
import { SqlRows } from "@kiln/core/adapter"
import type Database from "better-sqlite3"

const batchSize = 20_000

/** Inserts `builds` in order; `onBatch` hears how many are written after each transaction. */
export const insertBuilds = (
  db: Database.Database,
  builds: Iterable<Build.Build>,
  onBatch: (written: number) => void = () => {}
) => {
  let insert: Database.Statement | undefined
  const insertMany = db.transaction((batch: ReadonlyArray<SqlRows.BuildRow>) => {
    for (const row of batch) insert!.run(row)
  })
  let batch: Array<SqlRows.BuildRow> = []
  let written = 0
  const flush = () => {
    insertMany(batch)
    written += batch.length
    batch = []
    onBatch(written)
  }
  for (const build of builds) {
    const row = SqlRows.fromBuild(build)
    if (insert === undefined) {
      const columns = Object.keys(row)
      insert = db.prepare(
        `INSERT INTO builds (${columns.join(", ")}) VALUES (${columns.map((c) => `@${c}`).join(", ")})`
      )
    }
    batch.push(row)
    if (batch.length === batchSize) flush()
  }
  if (batch.length > 0) flush()
}
