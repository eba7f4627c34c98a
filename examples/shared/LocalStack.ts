/**
 * A whole Kiln on this machine, over a data directory: SQLite (or PostgreSQL, with the uploaded archives in
 * it), the source store, the Docker runner, the engine, Kiln's own tokens, and a page-cursor key that
 * survives restarts. The server, mount and embed examples all run this; `bootstrap` gives an empty database its first workspace and admin token.
 */
import { randomBytes } from "node:crypto"
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { hostname } from "node:os"
import { delimiter } from "node:path"
import { PgArchiveStore, PgStorage } from "@kiln/adapter-postgres"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import {
  Authenticator,
  type Bootstrap,
  Cursor,
  Engine,
  type Metrics,
  type Runner,
  type SourceError,
  SourceStore,
  type Storage,
  type StorageError,
  Webhook
} from "@kiln/core"
import { KilnMetrics } from "@kiln/http"
import { DockerRunner } from "@kiln/runner-docker"
import { Effect, Layer } from "effect"
import * as DataDir from "./DataDir.ts"

export interface Options {
  /** Keeps this stack's containers and images apart from other Kiln processes on the engine. */
  readonly namespace?: string | undefined
  /** Tag images for this registry and push them, e.g. `127.0.0.1:5000`. */
  readonly registry?: string | undefined
  readonly engine?: Engine.EngineOptions | undefined
  /**
   * Directories whose git repositories a git source may name by path; none by default, so a token that
   * can create versions cannot read the host's repositories.
   */
  readonly gitLocalDirectories?: ReadonlyArray<string> | undefined
  /**
   * Where webhooks may point, for the routes that save endpoints and the engine that sends; by default no
   * loopback, private, link-local or metadata address.
   */
  readonly webhookAddresses?: Webhook.AddressOptions | undefined
}

/**
 * The options the environment gives: `KILN_DOCKER_NAMESPACE` (default `namespace`), `KILN_REGISTRY`,
 * `KILN_GIT_LOCAL_DIRS` (directories separated by `:`, as in `PATH`), `KILN_WEBHOOK_ALLOW_PRIVATE=1`
 * (webhooks may reach loopback and private addresses: receivers on this machine or network).
 */
export const optionsFromEnv = (namespace?: string): Options => ({
  namespace: process.env.KILN_DOCKER_NAMESPACE ?? namespace,
  registry: process.env.KILN_REGISTRY,
  gitLocalDirectories: (process.env.KILN_GIT_LOCAL_DIRS ?? "").split(delimiter).filter((dir) => dir !== ""),
  webhookAddresses: { allowPrivate: process.env.KILN_WEBHOOK_ALLOW_PRIVATE === "1" }
})

/** Everything a Kiln process needs, for the life of the layer. */
export type Services =
  | Engine.Engine
  | Authenticator.Authenticator
  | Storage.Storage
  | SourceStore.SourceStore
  | Runner.Runner
  | Metrics.Metrics
  | KilnMetrics.KilnMetrics

export const layer = (
  dataDir: DataDir.DataDir,
  options: Options = {}
): Layer.Layer<Services, StorageError.StorageError | SourceError.SourceError> =>
  Layer.unwrap(
    Effect.gen(function* () {
      DataDir.create(dataDir)
      const exposed = DataDir.exposure(dataDir)
      if (exposed !== undefined) yield* Effect.logWarning(exposed)
      const unshared = unsharedImages(dataDir, options)
      if (unshared !== undefined) yield* Effect.logWarning(unshared)
      const sourceOptions = { directory: dataDir.sources, localRepositories: options.gitLocalDirectories }
      // On PostgreSQL every process may claim a build of an archive another process received: the
      // archives live in the database, and the directory holds only what a running operation unpacks.
      const [storage, sources] =
        dataDir.postgres === undefined
          ? [SqliteStorage.layer({ filename: dataDir.database }), SourceStore.layer(sourceOptions)]
          : [
              PgStorage.layer({ connectionString: dataDir.postgres }),
              SourceStore.layerWithArchiveStore(sourceOptions).pipe(
                Layer.provide(PgArchiveStore.layer({ connectionString: dataDir.postgres }))
              )
            ]
      const services = Layer.mergeAll(
        storage,
        sources,
        DockerRunner.layer({
          namespace: options.namespace,
          registry: options.registry === undefined ? undefined : { host: options.registry }
        })
      )
      return Layer.mergeAll(Engine.layer(options.engine), Authenticator.layer).pipe(
        // Recorded always (a counter's increment a change), served only where the host mounts `/metrics`.
        Layer.provideMerge(KilnMetrics.layer),
        Layer.provideMerge(services),
        Layer.provideMerge(Cursor.layer(cursorSecret(dataDir))),
        // Kept in the output, so that the API's routes judge endpoints by what the engine sends to.
        Layer.provideMerge(Layer.succeed(Webhook.Addresses, options.webhookAddresses ?? {}))
      )
    })
  )

/**
 * On a database without tokens: the first workspace (unless one exists) and an admin token over all
 * workspaces, whose secret goes to the data directory's `admin-token` (0600) and nowhere else. Processes
 * started together on one database issue one token between them: only the one told `Issued` writes the
 * file. Later starts find the tokens and change nothing.
 */
export const bootstrap = (
  dataDir: DataDir.DataDir
): Effect.Effect<Bootstrap.Bootstrapped, StorageError.StorageError, Storage.Storage> =>
  Effect.gen(function* () {
    const bootstrapped = yield* Authenticator.bootstrap({
      workspaceName: "Default",
      // Names the host, so that the other hosts of a deployment can say where the secret is.
      tokenName: `admin (first start on ${hostname()})`
    })
    if (bootstrapped._tag === "Existing") return bootstrapped
    const { secret, ...issued } = bootstrapped
    // Created fresh with 0600, so the secret is never readable by others, not even for a moment.
    rmSync(dataDir.adminToken, { force: true })
    writeFileSync(dataDir.adminToken, `${secret}\n`, { mode: 0o600, flag: "wx" })
    return issued
  })

/**
 * What to say when processes share a PostgreSQL but push no images: a build claimed by one host leaves its
 * image on that host's engine only, whichever host the build was asked of.
 */
const unsharedImages = (dataDir: DataDir.DataDir, options: Options): string | undefined =>
  dataDir.postgres === undefined || options.registry !== undefined
    ? undefined
    : "KILN_DATABASE_URL without KILN_REGISTRY: each image stays on the Docker engine of the host that built it, " +
      "so a build's image tag (the deployments API's image_tag too) names an image other hosts cannot pull. " +
      "Set KILN_REGISTRY on every host to push each image to a registry any host can pull from."

/** `KILN_CURSOR_SECRET`, or a random key kept in the data directory (0600), made on the first start. */
const cursorSecret = (dataDir: DataDir.DataDir): string => {
  const configured = process.env.KILN_CURSOR_SECRET
  if (configured !== undefined && configured !== "") return configured
  try {
    writeFileSync(dataDir.cursorSecret, randomBytes(32).toString("base64url"), { mode: 0o600, flag: "wx" })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
  }
  return readFileSync(dataDir.cursorSecret, "utf8").trim()
}
