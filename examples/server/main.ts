/**
 * Kiln as a server (`npm start`): SQLite, the source store, the Docker runner and the engine, with the
 * HTTP API, its log stream WebSocket, its docs and the web dashboard (`/ui/`) on 127.0.0.1:8787. The first start on an empty
 * database creates a workspace and an admin token, whose secret it writes to `.kiln/admin-token` (0600);
 * later starts reuse both (on a shared PostgreSQL, the one process that issued the token writes the file,
 * and the others say so). Ctrl-C (or SIGTERM) stops it gracefully: running builds get 10 s to finish,
 * then are cancelled.
 *
 * Environment: `KILN_PORT`, `KILN_HOST`; `KILN_DATA_DIR` (default `.kiln/`), `KILN_DB`, or `KILN_DATABASE_URL`
 * for PostgreSQL (any number of servers may share one);
 * `KILN_CURSOR_SECRET` (default: a key kept in the data directory); `KILN_DOCKER_NAMESPACE`, `KILN_REGISTRY`;
 * `KILN_GIT_LOCAL_DIRS`, the directories whose git repositories a source may name by path (none by default);
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (and OpenTelemetry's other `OTEL_EXPORTER_OTLP_*` variables) exports
 * traces over OTLP/HTTP; `KILN_METRICS_TOKEN` (16 characters or more) serves `GET /metrics` to a scraper sending it;
 * `KILN_LOG_FORMAT=json` for one JSON object a line on stdout (the banner too), each line of a request
 * carrying its `requestId` and each line of a build its `buildId`, for a log shipper; `KILN_RETENTION`, the
 * retention settings as JSON (`Retention.fromJson`: e.g. `{"logs":"30 days","keepBuilds":100,"keepImages":3}`).
 */
import { existsSync } from "node:fs"
import { NodeRuntime } from "@effect/platform-node"
import { Retention, Tracing } from "@kiln/core"
import { KilnHttp } from "@kiln/http"
import { Config, Console, DateTime, Effect, Layer, Logger, Option } from "effect"
import { HttpServer } from "effect/http"
import * as DataDir from "../shared/DataDir.ts"
import * as LocalStack from "../shared/LocalStack.ts"

const dataDir = DataDir.fromEnv()

const logFormat = Config.Literals(["text", "json"], "KILN_LOG_FORMAT").pipe(Config.withDefault("text"))

/** Text for a terminal, as written; in JSON mode a log line, so that stdout holds nothing else. */
const say = (text: string) =>
  Effect.flatMap(logFormat, (format) => (format === "json" ? Effect.logInfo(text) : Console.log(text)))

const welcome = Effect.gen(function* () {
  const url = yield* HttpServer.addressFormattedWith(Effect.succeed)
  const bootstrapped = yield* LocalStack.bootstrap(dataDir)
  const tokenFile = DataDir.forDisplay(dataDir.adminToken)
  const lines = [
    `Kiln is listening on ${url}`,
    `  dashboard  ${url}/ui/`,
    `  API        ${url}/api`,
    `  docs       ${url}/api/docs`,
    `  database   ${DataDir.databaseForDisplay(dataDir)}`,
    ""
  ]
  if (bootstrapped._tag === "Issued") {
    lines.push(
      bootstrapped.createdWorkspace
        ? `First start: created the workspace "${bootstrapped.workspace.name}" and an admin token for all workspaces.`
        : "First start of the API on this database: issued an admin token for all workspaces.",
      `Its secret is in ${tokenFile} (readable by you only). Try:`
    )
  } else if (existsSync(dataDir.adminToken)) {
    lines.push(`Admin token: ${tokenFile} (issued on the first start). Try:`)
  } else if (dataDir.postgres !== undefined) {
    // Processes sharing the database issued one token between them: its secret went to one data directory.
    const { first } = bootstrapped
    lines.push(
      `The admin token was issued by another Kiln process on this database ("${first.name}", ${DateTime.formatIso(first.createdAt)}):`,
      `its secret is in that process's data directory, in admin-token.`
    )
  } else {
    // The secret was shown only to that file: there is nothing to print.
    lines.push(
      `The database has ${bootstrapped.tokens} token(s), but ${tokenFile} is gone: use a token you kept,`,
      `or remove ${DataDir.forDisplay(dataDir.dir)} to start over.`
    )
  }
  if (existsSync(dataDir.adminToken)) {
    lines.push("", `  curl -H "Authorization: Bearer $(cat ${tokenFile})" ${url}/api/workspaces`)
  }
  lines.push("", "Build examples/hello-app through the API, in a second terminal: npm run demo", "")
  yield* say(lines.join("\n"))
  yield* Effect.addFinalizer(() => Effect.orDie(say("Stopping: running builds get 10 s to finish.")))
})

const server = Layer.unwrap(
  Effect.gen(function* () {
    const port = yield* Config.Port("KILN_PORT").pipe(Config.withDefault(8787))
    const host = yield* Config.String("KILN_HOST").pipe(Config.withDefault("127.0.0.1"))
    const logger = (yield* logFormat) === "json" ? Logger.layer([Logger.consoleJson]) : Layer.empty
    const metricsToken = yield* Config.option(Config.Redacted("KILN_METRICS_TOKEN"))
    const retention = yield* Config.option(Config.String("KILN_RETENTION"))
    const retentionSettings = Option.isNone(retention)
      ? undefined
      : yield* Effect.mapError(
          Effect.fromResult(Retention.fromJson(retention.value)),
          (message) => new Error(`KILN_RETENTION: ${message}`)
        )
    return Layer.effectDiscard(welcome).pipe(
      Layer.provideMerge(
        KilnHttp.layerServer({
          port,
          host,
          dashboard: true,
          metrics: Option.match(metricsToken, { onNone: () => undefined, onSome: (token) => ({ token }) })
        })
      ),
      Layer.provideMerge(
        LocalStack.layer(dataDir, {
          ...LocalStack.optionsFromEnv(),
          engine: { shutdownGraceMs: 10_000, retention: retentionSettings }
        })
      ),
      Layer.provide(logger),
      // Beneath everything, so that storage and the engine find the tracer when they are built.
      Layer.provide(Tracing.layerFromEnv)
    )
  })
)

Layer.launch(server).pipe(NodeRuntime.runMain)
