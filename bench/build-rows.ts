/**
 * Datasets of builds for the list benchmarks: made up deterministically, as a real history would look
 * (mostly finished, some failed, cancelled or still running, completion times that tie), and written
 * straight into a Kiln SQLite file in the adapter's own rows, a transaction per 20,000: a million take
 * seconds, where creating each through storage takes about a millisecond.
 */
import { existsSync, mkdirSync, rmSync } from "node:fs"
import { dirname } from "node:path"
import { performance } from "node:perf_hooks"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { type AppVersion, Build, BuildState, Id, type Storage } from "@kiln/core"
import { SqlRows } from "@kiln/core/adapter"
import Database from "better-sqlite3"
import { DateTime, Effect, Result } from "effect"

export const epoch = 1_735_689_600_000

/** A small deterministic generator, so every machine builds the same dataset. */
const random = (() => {
  let state = 0x2545f491
  return () => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return (state >>> 0) / 2 ** 32
  }
})()

const uuidOf = (value: bigint) => {
  const hex = value.toString(16).padStart(32, "0")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/**
 * Builds still running are among the newest: what engines' slots hold, about a thousand, as an older build
 * has long finished (and a page reads the builds in flight apart from the sort indexes, `Fields.builds`).
 */
const inFlightWindow = 20_000

/**
 * `total` builds, the i-th of `versions[i % versions.length]`, created 10 ms apart: 10% cancelled while
 * queued, 20% still queued, 5% running (of the newest `inFlightWindow`; failed before them), 15% failed, the
 * rest succeeded; a third each manual, auto and redeploy; 30% without a creator, the rest by one of 50
 * users.
 */
export function* generatedBuilds(
  total: number,
  versions: ReadonlyArray<AppVersion.AppVersion>
): Generator<Build.Build> {
  const generator = Id.makeGenerator(() => BigInt(Math.floor(random() * 2 ** 52)) * 4096n)
  const sequences = new Array<number>(versions.length).fill(0)
  for (let i = 0; i < total; i++) {
    const w = i % versions.length
    const createdMillis = epoch + i * 10
    const version = versions[w]!
    const at = (offset: number) => DateTime.makeUnsafe(createdMillis + offset)
    let build = Build.make(
      Id.fromUuid("bld", uuidOf(generator.next(createdMillis)))!,
      version,
      ++sequences[w]!,
      {
        appVersionId: version.id,
        trigger: (["manual", "auto", "redeploy"] as const)[i % 3]!,
        createdBy: random() < 0.3 ? null : `user-${Math.floor(random() * 50)}`
      },
      at(0)
    )
    const fate = random()
    const fence = { owner: "bench", attempt: 1 }
    const apply = (event: BuildState.BuildEvent) => {
      build = Result.getOrThrow(BuildState.transition(build, event))
    }
    if (fate < 0.1) apply({ _tag: "Cancel", at: at(500), reason: "not needed" })
    else if (fate >= 0.3) {
      apply({ _tag: "Claim", at: at(1_000), ...fence, leaseExpiresAt: at(60_000) })
      apply({ _tag: "Started", at: at(2_000), ...fence })
      // Whole seconds, so completion times tie across builds.
      const done = at(1_000 * (3 + Math.floor(random() * 600)))
      if (fate < 0.35 && i >= total - inFlightWindow) {
        // Still running: no completion time.
      } else if (fate < 0.5) apply({ _tag: "Failed", at: done, ...fence, error: "exit code 1" })
      else
        apply({
          _tag: "Succeeded",
          at: done,
          ...fence,
          imageTag: `registry.local/app-${w}:${i}`,
          imageDigest: null
        })
    }
    yield build
  }
}

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

/** A progress line every 200,000 builds written, timed from `started`. */
export const progress = (started: number) => (written: number) => {
  if (written % 200_000 === 0) {
    console.log(
      `  ${written.toLocaleString()} builds (${((performance.now() - started) / 1000).toFixed(1)} s)`
    )
  }
}

/** Whether `file` holds a dataset built as `version`. */
const ready = (file: string, version: string): boolean => {
  if (!existsSync(file)) return false
  const db = new Database(file, { readonly: true })
  try {
    return db.prepare("SELECT version FROM bench_meta").pluck().get() === version
  } catch {
    return false
  } finally {
    db.close()
  }
}

/**
 * A SQLite file of `total` generated builds of the versions `versionsOf` creates through storage, built
 * once and reused while it is marked `version` (a generator that changes gets a new version).
 */
export const cachedDataset = <E>(
  file: string,
  version: string,
  total: number,
  versionsOf: Effect.Effect<ReadonlyArray<AppVersion.AppVersion>, E, Storage.Storage>
) =>
  Effect.gen(function* () {
    if (ready(file, version)) return
    rmSync(file, { force: true })
    mkdirSync(dirname(file), { recursive: true })
    console.log(`seeding ${total.toLocaleString()} builds into ${file} (once; reused by later runs)`)
    const versions = yield* versionsOf.pipe(Effect.provide(SqliteStorage.layer({ filename: file })))
    const db = new Database(file)
    db.pragma("journal_mode = WAL")
    db.pragma("synchronous = OFF")
    const started = performance.now()
    insertBuilds(db, generatedBuilds(total, versions), progress(started))
    db.exec("ANALYZE")
    db.exec("CREATE TABLE bench_meta (version TEXT NOT NULL)")
    db.prepare("INSERT INTO bench_meta (version) VALUES (?)").run(version)
    db.close()
    console.log(`seeded in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  })
