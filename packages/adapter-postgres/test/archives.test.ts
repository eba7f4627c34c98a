import { execFileSync, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { expect, it } from "@effect/vitest"
import { Access, App, AppVersion, ArchiveStore, Engine, Id, Runner, SourceStore, Storage } from "@kiln/core"
import { ArchiveStoreConformance } from "@kiln/core/testing"
import { Clock, Context, DateTime, Effect, Layer, Stream } from "effect"
import pg from "pg"
import { afterAll, describe } from "vitest"
import * as PgArchiveStore from "../src/PgArchiveStore.ts"
import * as PgStorage from "../src/PgStorage.ts"
import * as PgTesting from "../src/testing.ts"
import { bytesOf } from "./fixtures/archives/bytesOf.ts"
import { freshSchema, sql } from "./fixtures.ts"

const stalledPut = fileURLToPath(new URL("./fixtures/archives/stalledPut.ts", import.meta.url))

const root = mkdtempSync(join(tmpdir(), "kiln-pg-archives-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))
let made = 0
const tempDir = (name: string) => {
  const path = join(root, `${name}-${++made}`)
  mkdirSync(path, { recursive: true })
  return path
}

/** An archive store on `schema` of the test database, with a pool of its own. */
const archivesOn = (schema: string) =>
  PgArchiveStore.layer({ connectionString: PgTesting.databaseUrl(), schema })

ArchiveStoreConformance.all("postgres", () => Layer.unwrap(Effect.map(freshSchema, archivesOn)))

/** The source store of one Kiln process: its own scratch directory and pool, on the shared schema. */
const processOn = (schema: string, options: Omit<SourceStore.SourceStoreOptions, "directory"> = {}) =>
  SourceStore.layerWithArchiveStore({ ...options, directory: tempDir("process") }).pipe(
    Layer.provide(archivesOn(schema))
  )

/** A `.tar.gz` made by the tar CLI of `count` files of 1 MiB of incompressible bytes, and the files. */
const bigArchive = (seed: string, count: number) => {
  const dir = tempDir("tree")
  const files = Array.from({ length: count }, (_, i) => ({
    name: `f${i}.bin`,
    bytes: bytesOf(`${seed}${i}`, 1 << 20)
  }))
  for (const { name, bytes } of files) writeFileSync(join(dir, name), bytes)
  return { bytes: execFileSync("tar", ["-czf", "-", "-C", dir, "."], { maxBuffer: 1 << 30 }), files }
}

const inPieces = (bytes: Uint8Array, size = 64 * 1024) =>
  Stream.fromIterable(
    Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size))
  )

/** A ready version of a stored archive, as storage would hand it to the engine. */
const archiveVersion = (stored: SourceStore.StoredArchive) =>
  Effect.gen(function* () {
    const now = DateTime.makeUnsafe(yield* Clock.currentTimeMillis)
    const version = AppVersion.make(
      yield* Id.generate("ver"),
      yield* Id.generate("wsp"),
      { appId: yield* Id.generate("app"), source: { type: "archive" } },
      now
    )
    return AppVersion.resolve(version, AppVersion.archiveStored(stored), now)
  })

/** The files of a build context, as the tar CLI extracts them. */
const extracted = (context: Uint8Array) => {
  const dir = tempDir("extract")
  execFileSync("tar", ["-xf", "-", "-C", dir], { input: context, maxBuffer: 1 << 30 })
  return dir
}

const countOf = (schema: string, from: string) =>
  Effect.map(
    sql<{ n: string }>(`SELECT count(*) AS n FROM ${pg.escapeIdentifier(schema)}.${from}`),
    ([row]) => Number(row!.n)
  )

/** The source store of a process built with `Layer.build`. */
const sourcesOf = (context: Context.Context<SourceStore.SourceStore>) =>
  Context.get(context, SourceStore.SourceStore)

const contextBytes = (sources: SourceStore.SourceStoreShape, stored: SourceStore.StoredArchive) =>
  Effect.flatMap(archiveVersion(stored), (version) =>
    Effect.map(Stream.runCollect(sources.context(version, "")), (chunks) => Buffer.concat(chunks))
  )

const chunksOf = (bytes: number) => Math.ceil(bytes / (1024 * 1024))

describe("postgres archive store", () => {
  it.live("an archive uploaded through one process is a build context on another", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      const a = sourcesOf(yield* Layer.build(processOn(schema)))
      const b = sourcesOf(yield* Layer.build(processOn(schema)))
      const { bytes, files } = bigArchive("two-processes", 6)
      const stored = yield* a.putArchive(inPieces(bytes))
      expect(stored).toEqual({
        sha256: createHash("sha256").update(bytes).digest("hex"),
        sizeBytes: bytes.length
      })
      const dir = extracted(yield* contextBytes(b, stored))
      for (const file of files) expect(readFileSync(join(dir, file.name)).equals(file.bytes)).toBe(true)
      expect(yield* countOf(schema, "archive_chunks")).toBe(chunksOf(bytes.length))
    }).pipe(Effect.scoped)
  )

  it.live("the same archive uploaded through two processes at once: both succeed, one blob is stored", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      const a = sourcesOf(yield* Layer.build(processOn(schema)))
      const b = sourcesOf(yield* Layer.build(processOn(schema)))
      const { bytes, files } = bigArchive("at-once", 4)
      const [fromA, fromB] = yield* Effect.all(
        [a.putArchive(inPieces(bytes)), b.putArchive(inPieces(bytes))],
        { concurrency: "unbounded" }
      )
      expect(fromA).toEqual(fromB)
      expect(yield* countOf(schema, "archive_blobs")).toBe(1)
      expect(yield* countOf(schema, "archive_chunks")).toBe(chunksOf(bytes.length))
      const dir = extracted(yield* contextBytes(a, fromA))
      expect(readFileSync(join(dir, files[3]!.name)).equals(files[3]!.bytes)).toBe(true)
    }).pipe(Effect.scoped)
  )

  it.live(
    "a reader that stops early leaves no connection mid-COPY: the next read on a pool of one works",
    () =>
      Effect.gen(function* () {
        const schema = yield* freshSchema
        // One connection: one left mid-COPY or lost would stall the next call.
        const archives = Context.get(
          yield* Layer.build(
            PgArchiveStore.layer({ connectionString: PgTesting.databaseUrl(), schema, poolSize: 1 })
          ),
          ArchiveStore.ArchiveStore
        )
        const bytes = bytesOf("early", 24 * 1024 * 1024)
        const { sha256 } = yield* archives.put({ body: inPieces(bytes, 16 * 1024) })
        for (let i = 0; i < 3; i++) {
          const head = yield* Stream.runCollect(Stream.take(archives.read(sha256), 1))
          expect(head.length).toBe(1)
        }
        const whole = Buffer.concat(yield* Stream.runCollect(archives.read(sha256)))
        expect(whole.equals(bytes)).toBe(true)
        expect(yield* archives.has(sha256)).toBe(true)
      }).pipe(Effect.timeout("20 seconds"), Effect.scoped)
  )

  it.live("a chunk lost from the database fails the read as damaged, never as a shorter archive", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      const archives = Context.get(yield* Layer.build(archivesOn(schema)), ArchiveStore.ArchiveStore)
      const bytes = bytesOf("damaged", 3 * 1024 * 1024 + 5)
      const { sha256 } = yield* archives.put({ body: inPieces(bytes) })
      yield* sql(`DELETE FROM ${pg.escapeIdentifier(schema)}.archive_chunks WHERE idx = 1`)
      const error = yield* Effect.flip(Stream.runDrain(archives.read(sha256)))
      expect(error.reason).toBe("Unavailable")
      expect(error.message).toBe(`archive ${sha256.slice(0, 8)} is damaged or was removed while it was read`)
    }).pipe(Effect.scoped)
  )

  it.live(
    "a process killed during an upload leaves nothing readable, and does not hold the archive's name",
    () =>
      Effect.gen(function* () {
        const schema = yield* freshSchema
        const store = ArchiveStore.ArchiveStore
        const archives = Context.get(yield* Layer.build(archivesOn(schema)), store)
        const size = 6 * 1024 * 1024
        const bytes = bytesOf("killed", size)
        const sha256 = createHash("sha256").update(bytes).digest("hex")
        const child = yield* Effect.acquireRelease(
          Effect.sync(() =>
            spawn(
              process.execPath,
              [
                "--conditions=@kiln/source",
                stalledPut,
                PgTesting.databaseUrl(),
                schema,
                "killed",
                String(size)
              ],
              { stdio: ["ignore", "pipe", "inherit"] }
            )
          ),
          (child) => Effect.sync(() => child.kill("SIGKILL"))
        )
        yield* Effect.callback<void>((resume) => {
          child.stdout!.on("data", (chunk: Buffer) => {
            if (chunk.toString().includes("stalled")) resume(Effect.void)
          })
        })
        // The first chunks are written in the child's transaction, unseen by anyone else.
        yield* Effect.sleep("500 millis")
        expect(yield* archives.has(sha256)).toBe(false)
        yield* Effect.callback<void>((resume) => {
          child.once("exit", () => resume(Effect.void))
          child.kill("SIGKILL")
        })
        expect(yield* archives.has(sha256)).toBe(false)
        expect((yield* Effect.flip(Stream.runDrain(archives.read(sha256)))).reason).toBe("Missing")
        expect(yield* countOf(schema, "archive_chunks")).toBe(0)
        // Nothing of it holds the name: a put of the same bytes stores them at once.
        yield* archives.put({ body: inPieces(bytes) }).pipe(Effect.timeout("10 seconds"))
        const read = Buffer.concat(yield* Stream.runCollect(archives.read(sha256)))
        expect(read.equals(bytes)).toBe(true)
      }).pipe(Effect.scoped)
  )

  it.live("the engine removes only archives no version names, once past the grace period", () =>
    Effect.gen(function* () {
      const schema = yield* freshSchema
      const url = PgTesting.databaseUrl()
      const kiln = yield* Layer.build(
        Engine.layer({ archiveSweepIntervalMs: 100 }).pipe(
          Layer.provideMerge(
            Layer.mergeAll(
              PgStorage.layer({ connectionString: url, schema }),
              Runner.layerTest,
              processOn(schema, { archiveGracePeriod: "2 seconds" })
            )
          )
        )
      )
      const storage = Context.get(kiln, Storage.Storage)
      const sources = sourcesOf(kiln)
      const workspace = yield* storage.createWorkspace({ name: "acme" })
      const app = yield* storage.createApp(Access.all, {
        workspaceId: workspace.id,
        handle: "web",
        name: "Web",
        kind: "app",
        build: App.defaultBuildSettings
      })
      const upload = (seed: string) => sources.putArchive(inPieces(bigArchive(seed, 1).bytes))
      const named = yield* upload("named")
      const version = yield* storage.createAppVersion(Access.all, {
        appId: app.id,
        source: { type: "archive" }
      })
      yield* storage.resolveAppVersion(Access.all, version.id, AppVersion.archiveStored(named))
      const unnamed = yield* upload("unnamed")
      yield* Effect.sleep("500 millis")
      const fresh = yield* upload("fresh")
      const stored = () =>
        Effect.map(
          sql<{ sha256: string }>(
            `SELECT sha256 FROM ${pg.escapeIdentifier(schema)}.archive_blobs ORDER BY sha256`
          ),
          (rows) => rows.map((row) => row.sha256)
        )
      yield* Effect.sleep("50 millis").pipe(
        Effect.andThen(stored()),
        Effect.repeat({ until: (names) => !names.includes(unnamed.sha256), times: 100 })
      )
      expect(yield* stored()).toEqual([named.sha256, fresh.sha256].sort())
      // Its chunks went with it.
      expect(
        yield* sql(
          `SELECT 1 FROM ${pg.escapeIdentifier(schema)}.archive_chunks c
           WHERE NOT EXISTS (SELECT 1 FROM ${pg.escapeIdentifier(schema)}.archive_blobs b WHERE b.blob_id = c.blob_id)`
        )
      ).toEqual([])
    }).pipe(Effect.scoped)
  )
})
