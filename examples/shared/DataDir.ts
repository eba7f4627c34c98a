/**
 * Where the examples keep their state: one directory (`.kiln/` at the repository root, or
 * `KILN_DATA_DIR`) with the SQLite database, the source store, the admin token the server issues on its
 * first start, and the key that signs its page cursors. With `KILN_DATABASE_URL` the database is that
 * PostgreSQL instead, shared by every process pointed at it.
 */
import { existsSync, mkdirSync, statSync } from "node:fs"
import { dirname, isAbsolute, relative, resolve } from "node:path"

export interface DataDir {
  readonly dir: string
  /** `KILN_DB` moves the database out of the directory. */
  readonly database: string
  /** `KILN_DATABASE_URL`: a PostgreSQL to use instead of the SQLite file. */
  readonly postgres?: string | undefined
  readonly sources: string
  /** The first admin token's secret (mode 0600), for the demo and for `curl`. */
  readonly adminToken: string
  readonly cursorSecret: string
}

export const root = resolve(import.meta.dirname, "../..")

/** The data directory `dir`, with the database inside it unless `database` says otherwise. */
export const at = (dir: string, database: string = resolve(dir, "kiln.db")): DataDir => ({
  dir,
  database,
  sources: resolve(dir, "sources"),
  adminToken: resolve(dir, "admin-token"),
  cursorSecret: resolve(dir, "cursor-secret")
})

/**
 * Creates the directory, and the database's when `KILN_DB` puts it elsewhere, as 0700: they hold the
 * database (logs included), the sources and the secrets, for this user only. A directory that exists keeps
 * its mode (it may be one the user shares on purpose).
 */
export const create = (dataDir: DataDir): void => {
  mkdirSync(dataDir.dir, { recursive: true, mode: 0o700 })
  mkdirSync(dirname(dataDir.database), { recursive: true, mode: 0o700 })
}

/**
 * What to say when the SQLite database others can read was made before Kiln created it 0600 (or by hand):
 * its files are named with the command that makes them this user's only. Nothing is changed on its own.
 */
export const exposure = (dataDir: DataDir): string | undefined => {
  if (dataDir.postgres !== undefined) return undefined
  const files = [dataDir.database, `${dataDir.database}-wal`, `${dataDir.database}-shm`].filter(
    (file) => existsSync(file) && (statSync(file).mode & 0o077) !== 0
  )
  if (files.length === 0) return undefined
  const modes = files.map((file) => `${forDisplay(file)} ${(statSync(file).mode & 0o777).toString(8)}`)
  return `${modes.join(", ")}: other local users can read the builds and their logs. Run: chmod 600 ${files.map(forDisplay).join(" ")}`
}

/** `KILN_DATA_DIR` (default `fallback`, else `.kiln/` in the repository), `KILN_DB` and `KILN_DATABASE_URL`. */
export const fromEnv = (fallback: string = resolve(root, ".kiln")): DataDir => ({
  ...at(
    resolve(process.env.KILN_DATA_DIR ?? fallback),
    process.env.KILN_DB === undefined ? undefined : resolve(process.env.KILN_DB)
  ),
  postgres: process.env.KILN_DATABASE_URL || undefined
})

/** The database as the user should see it: a path, or a PostgreSQL URL without its password. */
export const databaseForDisplay = (dataDir: DataDir): string => {
  if (dataDir.postgres === undefined) return forDisplay(dataDir.database)
  const url = new URL(dataDir.postgres)
  if (url.password !== "") url.password = "***"
  return url.toString()
}

/** A path as the user would type it from the working directory. */
export const forDisplay = (path: string): string => {
  const near = relative(process.cwd(), path)
  return near.startsWith("..") || isAbsolute(near) ? path : near
}
