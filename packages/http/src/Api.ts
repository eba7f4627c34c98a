/**
 * The canonical API (`/api/…`, the seed-000 contract) as an Effect HttpApi: one definition that the
 * server implements, `KilnClient` calls, and OpenAPI documents. Shared by server and clients, so it holds
 * no server code.
 */

import type { Authenticator } from "@kiln/core"
import { ApiToken, App, AppVersion, Build, BuildState, LogLine, Workspace } from "@kiln/core"
import { Context, Schema } from "effect"
import {
  HttpApi,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpApiSchema,
  HttpApiSecurity,
  OpenApi
} from "effect/http-api"
import {
  BadRequest,
  Conflict,
  Forbidden,
  NotFound,
  PayloadTooLarge,
  ServiceUnavailable,
  Unauthorized
} from "./ApiError.ts"
import { DeploymentStatus } from "./internal/dialectStatus.ts"

// -----------------------------------------------------------------------------------------------------
// Views: the domain as clients see it
// -----------------------------------------------------------------------------------------------------

/** A build as every list and response shows it; the claim's lease details stay inside. */
export const BuildView = Build.Build.mapFields(
  ({
    owner: _owner,
    attempt: _attempt,
    leaseExpiresAt: _lease,
    idempotencyKey: _key,
    phase: _phase,
    ...fields
  }) => fields
)
export type BuildView = typeof BuildView.Type

/** `GET /api/builds/{id}`: the build with its steps. */
export const BuildDetailView = BuildView.mapFields((fields) => ({
  ...fields,
  steps: Schema.Array(Build.BuildStep)
}))
export type BuildDetailView = typeof BuildDetailView.Type

export const WorkspaceView = Workspace.Workspace
export const AppView = App.App
export const AppVersionView = AppVersion.AppVersion
export const TokenView = ApiToken.ApiToken
/** A token as created: with its secret, shown this once. */
export const CreatedTokenView = ApiToken.ApiToken.mapFields((fields) => ({ ...fields, token: Schema.String }))

/** Why an empty page's cursors are null, though the seed document types them as strings. */
const emptyPageCursor =
  "null on an empty page (as in Relay's PageInfo): a cursor names a row, and an empty page has none. To look again later for rows past the end, reuse the cursor you asked with."

export const PageInfo = Schema.Struct({
  total: Schema.Int.annotate({ description: "Rows matching the scope and filter, whatever the cursor." }),
  hasNextPage: Schema.Boolean,
  hasPreviousPage: Schema.Boolean,
  startCursor: Schema.NullOr(Schema.String).annotate({
    description: `The first row's cursor: pass it as \`before\` for the previous page; ${emptyPageCursor}`
  }),
  endCursor: Schema.NullOr(Schema.String).annotate({
    description: `The last row's cursor: pass it as \`after\` for the next page; ${emptyPageCursor}`
  })
})

const page = <S extends Schema.Top>(item: S) =>
  Schema.Struct({ data: Schema.Array(item), pageInfo: PageInfo })

export const LogLineView = LogLine.LogLine
export const LogPageView = Schema.Struct({
  data: Schema.Array(LogLineView),
  /** Where to continue: pass it back as `cursor` here, or to the stream. */
  cursor: Schema.String,
  truncated: Schema.Boolean,
  /** The build has stopped and there are no lines after these. */
  complete: Schema.Boolean
})

/** A message of the log stream (`GET /api/builds/{id}/logs/stream`, a WebSocket). */
export const LogStreamMessage = Schema.Union([
  Schema.Struct({ type: Schema.Literal("line"), ...LogLine.LogLine.fields, cursor: Schema.String }),
  Schema.Struct({ type: Schema.Literal("status"), status: BuildState.Status }),
  /** The last message: the build has stopped and every line was sent. The server then closes normally. */
  Schema.Struct({ type: Schema.Literal("end"), status: BuildState.Status, cursor: Schema.String })
])
export type LogStreamMessage = typeof LogStreamMessage.Type

/** The subprotocol a log stream client offers; the server answers with it, so a token is never echoed. */
export const logStreamProtocol = "kiln"
/** Browsers cannot set headers on a WebSocket: they offer `bearer.<token>` as a subprotocol instead. */
export const logStreamTokenProtocol = "bearer."

/** How the ticket endpoints explain tickets, with the browser code that uses one (`ticketPath` in JS). */
const ticketDescription = (ticketPath: string, expiresField: string) =>
  `A ticket for following this build's log from a browser, whose \`new WebSocket(url)\` cannot send an \
\`Authorization\` header. \`url\` is the log stream's URL with the ticket in its query (\`?ticket=…\`): open it as \
it is, with no token in the URL. The ticket is for this build only, for the token that asked for it, and expires \
after 60 seconds (\`${expiresField}\`); connecting checks the token again, so a revoked or expired token's tickets \
stop working at once. Another build, an expired or altered ticket: 401 before the upgrade. A reconnect within the \
minute may reuse it; after that, ask for another.

\`\`\`js
const response = await fetch(\`${ticketPath}\`, {
  method: "POST",
  headers: { Authorization: \`Bearer \${token}\` }
})
const { url } = await response.json()
const ws = new WebSocket(url)
ws.onmessage = (event) => console.log(event.data)
\`\`\``

/** `POST /api/builds/{id}/logs/ticket`: a ticket for the build's log streams, and the stream URL that carries it. */
export const LogTicketView = Schema.Struct({
  ticket: Schema.String,
  /** The log stream's `ws:`/`wss:` URL with `?ticket=…`. */
  url: Schema.String,
  expiresAt: Schema.DateTimeUtc
})

/** The same for the deployments dialect, in its spelling. */
export const DeploymentLogTicketView = Schema.Struct({
  ticket: Schema.String,
  url: Schema.String,
  expires_at: Schema.String
})

/** The stream's `ticket` query parameter, as both streams document it. */
const ticketParameter = {
  name: "ticket",
  in: "query",
  required: false,
  description:
    "A ticket from the build's `…/logs/ticket` endpoint, in place of a token: what a browser's `new WebSocket(url)` can send.",
  schema: { type: "string" }
}

// -----------------------------------------------------------------------------------------------------
// Authentication
// -----------------------------------------------------------------------------------------------------

/** Who is calling: provided to every handler by the `Authorization` middleware. */
export class CurrentPrincipal extends Context.Service<CurrentPrincipal, Authenticator.Principal>()(
  "@kiln/http/CurrentPrincipal"
) {}

export class Authorization extends HttpApiMiddleware.Service<Authorization, { provides: CurrentPrincipal }>()(
  "@kiln/http/Authorization",
  { security: { bearer: HttpApiSecurity.bearer }, error: [Unauthorized, BadRequest], requiredForClient: true }
) {}

/** Renders request decoding failures as `400 {"error": "invalid_request", …}` naming the path. */
export class RequestErrors extends HttpApiMiddleware.Service<RequestErrors>()("@kiln/http/RequestErrors", {
  error: BadRequest
}) {}

/**
 * The log stream, for the OpenAPI document: HttpApi does not serve WebSockets, so the route lives
 * beside it (`internal/logStream.ts`) and is described here by hand.
 */
const logStreamPath = (() => {
  const refusal = (description: string) => ({
    description,
    content: {
      "application/json": {
        schema: {
          type: "object",
          properties: { error: { type: "string" }, message: { type: "string" } },
          required: ["error", "message"]
        }
      }
    }
  })
  return {
    "/api/builds/{id}/logs/stream": {
      get: {
        tags: ["builds"],
        operationId: "builds.logStream",
        summary: "Follow a build's log over a WebSocket",
        description:
          "Upgrades to a WebSocket that sends JSON messages: `line` for each log line (with its cursor), `status` " +
          "when the status changes, and `end` once the build has stopped and every line was sent; the server then " +
          "closes with 1000. Reconnect with the last cursor to resume with no gap and no duplicate. A client that " +
          "takes nothing for 30 s while 1 MiB waits for it is closed with 4008, reason `slow consumer: resume from " +
          "cursor <cursor>`, after every line sent: reconnect with that cursor. Browsers, which " +
          "cannot set headers here, pass a ticket from `POST /api/builds/{id}/logs/ticket` as `?ticket=`, or offer " +
          `the token as the subprotocol \`${logStreamTokenProtocol}<token>\` beside \`${logStreamProtocol}\`, which ` +
          "the server answers with.",
        security: [{ bearer: [] }, {}],
        parameters: [
          { name: "id", in: "path", required: true, schema: { type: "string" } },
          { name: "cursor", in: "query", required: false, schema: { type: "string" } },
          ticketParameter
        ],
        responses: {
          "101": {
            description: "Switching to the WebSocket; each message is one of these.",
            content: { "application/json": { schema: Schema.toJsonSchemaDocument(LogStreamMessage).schema } }
          },
          "400": refusal("The cursor is not a log cursor this API issued."),
          "401": refusal(
            "Missing or invalid credentials, or a ticket that is expired, altered or for another build."
          ),
          "404": refusal("No such build, or not in the caller's workspaces."),
          "426": refusal("Not a WebSocket upgrade: the answer carries `Upgrade: websocket`.")
        }
      }
    }
  }
})()

/** The deployments dialect's log stream, also a WebSocket beside the HttpApi. */
const deploymentLogStreamPath = {
  "/api/v1/deployments/{deployment_id}/builds/{build_id}/logs/stream": {
    get: {
      tags: ["deployments"],
      operationId: "deployments.logStream",
      summary: "Follow a deployment build's log over a WebSocket",
      description:
        "Upgrades to a WebSocket that sends each log line's text, as it is produced, then closes with 1000 once " +
        "the build has stopped and every line was sent. A client that stops reading is closed with 4008 as on the " +
        "canonical stream, whose cursors `?cursor=` takes here too. Refusals come before the upgrade, as on the " +
        "canonical stream. A browser opens the `url` that `POST …/builds/{build_id}/logs/ticket` answers (this URL " +
        "with `?ticket=`), since `new WebSocket(url)` cannot send an `Authorization` header.",
      security: [{ bearer: [] }, {}],
      parameters: [
        { name: "deployment_id", in: "path", required: true, schema: { type: "string" } },
        { name: "build_id", in: "path", required: true, schema: { type: "string" } },
        { name: "cursor", in: "query", required: false, schema: { type: "string" } },
        ticketParameter
      ],
      responses: {
        "101": { description: "Switching to the WebSocket; each message is one line of text." },
        "401": {
          description:
            "Missing or invalid credentials, or a ticket that is expired, altered or for another build."
        },
        "404": { description: "No such build of this deployment." },
        "426": { description: "Not a WebSocket upgrade: the answer carries `Upgrade: websocket`." }
      }
    }
  }
}

/** A push event (`POST /api/events/push`), as a source host sends it. */
export const PushPayload = Schema.Struct({
  workspaceId: Schema.String.check(Schema.isMaxLength(100)),
  deliveryId: Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(255)),
  repository: Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(2048)),
  branch: Schema.optionalKey(Schema.NullOr(Schema.String.check(Schema.isMaxLength(255)))),
  commit: Schema.optionalKey(Schema.NullOr(AppVersion.CommitSha)),
  changedPaths: Schema.optionalKey(
    Schema.Array(Schema.String.check(Schema.isMaxLength(4096))).check(Schema.isMaxLength(10_000))
  ),
  author: Schema.optionalKey(Schema.NullOr(Schema.String.check(Schema.isMaxLength(4096)))),
  message: Schema.optionalKey(Schema.NullOr(Schema.String.check(Schema.isMaxLength(4096))))
})

/** The push route lives beside the HttpApi too (it reads the raw body to check its signature). */
const pushPath = {
  "/api/events/push": {
    post: {
      tags: ["events"],
      operationId: "events.push",
      summary: "Report a push",
      description:
        "Stores the push once per deliveryId and builds what the workspace's triggers say. Not authenticated " +
        "with a token: sign the raw body with the workspace's push secret (GET /api/workspaces/{id}/push-secret) " +
        "and send `X-Kiln-Signature: sha256=<hex HMAC-SHA256(secret, body)>`. Answers 201 with the builds made " +
        "(200 with the same for a redelivery), 400 for a body that is not a push or a repository that is not an " +
        "https://, http://, ssh:// or git@host:path URL, 401 for a missing or wrong signature (whether or not " +
        "the workspace exists: only a sender holding its secret learns that), 404 for a correctly signed push " +
        "to a workspace that does not exist, 503 when the server has no push key (KILN_PUSH_SECRET).",
      parameters: [{ name: "x-kiln-signature", in: "header", required: true, schema: { type: "string" } }],
      requestBody: {
        required: true,
        content: { "application/json": { schema: Schema.toJsonSchemaDocument(PushPayload).schema } }
      },
      responses: {
        "200": { description: "A redelivery: what the first delivery made." },
        "201": { description: "Stored: `{eventId, redelivered, builds, ignored}`." },
        "400": { description: "Not a push." },
        "401": { description: "Missing or invalid signature, whether or not the workspace exists." },
        "404": { description: "Correctly signed, but no such workspace." },
        "503": { description: "Push events are not configured on this server." }
      }
    }
  }
}

// -----------------------------------------------------------------------------------------------------
// Endpoints
// -----------------------------------------------------------------------------------------------------

const Text = (max: number) => Schema.String.check(Schema.isMaxLength(max))
const optionalText = (max: number, description: string) =>
  Schema.optional(Text(max).annotate({ description }))

/** The list contract every resource shares; values are parsed by `Query.fromParams`, which names the path. */
const listQuery = {
  limit: optionalText(8, "Page size, 1–100 (default 100)."),
  after: optionalText(4096, "Cursor: the page after this row (next page)."),
  before: optionalText(4096, "Cursor: the page before this row (previous page)."),
  ids: optionalText(8192, "Comma-separated ids; narrows within the caller's scope."),
  filter: optionalText(8192, "JSON filter expression: and/or/not, per-field operators, relations."),
  orderBy: optionalText(1024, 'JSON array of {field: direction}, e.g. [{"completedAt":"desc_nulls_last"}].')
}

const idParam = { id: Text(100) }

export class BuildsGroup extends HttpApiGroup.make("builds")
  .add(
    HttpApiEndpoint.get("list", "/builds", {
      query: {
        ...listQuery,
        workspace_id: optionalText(100, "Builds of this workspace."),
        entity_id: optionalText(100, "Builds of this entity (app, function, …)."),
        app_id: optionalText(100, "Builds of this app."),
        status: optionalText(20, "pending, running, completed, failed, cancelled or skipped."),
        trigger: optionalText(20, "manual, auto or redeploy."),
        created_by: optionalText(1024, "Builds created by this principal.")
      },
      success: page(BuildView),
      error: BadRequest
    }),
    HttpApiEndpoint.post("create", "/builds", {
      headers: { "idempotency-key": Schema.optional(Build.IdempotencyKey) },
      payload: Schema.Struct({ appVersionId: Text(100), metadata: Schema.optionalKey(Build.Metadata) }),
      success: BuildView.pipe(HttpApiSchema.status(201)),
      error: [BadRequest, Forbidden, NotFound, Conflict]
    }),
    HttpApiEndpoint.get("get", "/builds/:id", { params: idParam, success: BuildDetailView, error: NotFound }),
    HttpApiEndpoint.post("cancel", "/builds/:id/cancel", {
      params: idParam,
      // The body is optional (read as null): `POST …/cancel` with none cancels without a reason.
      payload: [Schema.Struct({ reason: Schema.optionalKey(Text(1000)) }), Schema.Null],
      success: Schema.Struct({
        success: Schema.Boolean,
        message: Schema.optionalKey(
          Schema.String.annotate({
            description: "Why not, when success is false: the build had already stopped."
          })
        )
      }),
      error: [Forbidden, NotFound]
    }),
    HttpApiEndpoint.post("redeploy", "/builds/:id/redeploy", {
      params: idParam,
      success: BuildView.pipe(HttpApiSchema.status(201)),
      error: [Forbidden, NotFound, Conflict]
    }),
    HttpApiEndpoint.get("logs", "/builds/:id/logs", {
      params: idParam,
      query: {
        cursor: optionalText(100, "Continue after this log cursor."),
        limit: optionalText(
          8,
          "Lines per page, 1–10000 (default 1000); with format=text, at most this many (default the whole log)."
        ),
        format: Schema.optional(
          Schema.Literals(["json", "text"]).annotate({
            description: "text: the log from the cursor on as text/plain, one line per newline, streamed."
          })
        )
      },
      success: [LogPageView, Schema.String.pipe(HttpApiSchema.asText())],
      error: [BadRequest, NotFound]
    }),
    HttpApiEndpoint.post("logTicket", "/builds/:id/logs/ticket", {
      params: idParam,
      success: LogTicketView,
      error: [Forbidden, NotFound]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "A ticket to follow the build's log from a browser",
        description: ticketDescription(`/api/builds/\${id}/logs/ticket`, "expiresAt")
      })
    )
  )
  .middleware(Authorization)
  .prefix("/api") {}

export class WorkspacesGroup extends HttpApiGroup.make("workspaces")
  .add(
    HttpApiEndpoint.get("list", "/workspaces", {
      query: listQuery,
      success: page(WorkspaceView),
      error: BadRequest
    }),
    HttpApiEndpoint.post("create", "/workspaces", {
      payload: Schema.Struct({ name: Workspace.NewName }),
      success: WorkspaceView.pipe(HttpApiSchema.status(201)),
      error: [Forbidden]
    }),
    HttpApiEndpoint.get("get", "/workspaces/:id", {
      params: idParam,
      success: WorkspaceView,
      error: NotFound
    }),
    HttpApiEndpoint.get("pushSecret", "/workspaces/:id/push-secret", {
      params: idParam,
      success: Schema.Struct({
        /** Sign each push's raw body with this: `X-Kiln-Signature: sha256=<hex HMAC-SHA256(secret, body)>`. */
        secret: Schema.String,
        header: Schema.String,
        url: Schema.String
      }),
      error: [Forbidden, NotFound, ServiceUnavailable]
    })
  )
  .middleware(Authorization)
  .prefix("/api") {}

/** Build settings as a client gives them: every field optional, defaults filled in. */
export const BuildSettingsInput = Schema.Struct({
  strategy: Schema.optionalKey(App.Strategy),
  dockerfilePath: Schema.optionalKey(App.RelativePath),
  rootDirectory: Schema.optionalKey(App.RelativePath),
  buildCommand: Schema.optionalKey(Schema.NullOr(Text(8192))),
  deployCommand: Schema.optionalKey(Schema.NullOr(Text(8192))),
  builderImage: Schema.optionalKey(Text(512)),
  caching: Schema.optionalKey(Schema.Boolean),
  timeoutMs: Schema.optionalKey(App.BuildSettings.fields.timeoutMs),
  limits: Schema.optionalKey(
    Schema.Struct({
      memoryBytes: Schema.optionalKey(App.Limits.fields.memoryBytes),
      cpus: Schema.optionalKey(App.Limits.fields.cpus),
      pids: Schema.optionalKey(App.Limits.fields.pids)
    })
  )
})

export class AppsGroup extends HttpApiGroup.make("apps")
  .add(
    HttpApiEndpoint.get("list", "/apps", {
      query: { ...listQuery, workspace_id: optionalText(100, "Apps of this workspace.") },
      success: page(AppView),
      error: BadRequest
    }),
    HttpApiEndpoint.post("create", "/apps", {
      payload: Schema.Struct({
        workspaceId: Text(100),
        handle: App.Handle,
        name: Workspace.NewName,
        kind: App.Kind,
        build: Schema.optionalKey(BuildSettingsInput)
      }),
      success: AppView.pipe(HttpApiSchema.status(201)),
      error: [BadRequest, Forbidden, NotFound, Conflict]
    }),
    HttpApiEndpoint.get("get", "/apps/:id", { params: idParam, success: AppView, error: NotFound })
  )
  .middleware(Authorization)
  .prefix("/api") {}

export class AppVersionsGroup extends HttpApiGroup.make("appVersions")
  .add(
    HttpApiEndpoint.get("list", "/app-versions", {
      query: {
        ...listQuery,
        workspace_id: optionalText(100, "Versions of apps of this workspace."),
        app_id: optionalText(100, "Versions of this app.")
      },
      success: page(AppVersionView),
      error: BadRequest
    }),
    HttpApiEndpoint.post("create", "/app-versions", {
      payload: Schema.Struct({ appId: Text(100), source: AppVersion.NewSource }),
      success: AppVersionView.pipe(HttpApiSchema.status(201)),
      error: [BadRequest, Forbidden, NotFound]
    }),
    HttpApiEndpoint.get("get", "/app-versions/:id", {
      params: idParam,
      success: AppVersionView,
      error: NotFound
    }),
    HttpApiEndpoint.post("uploadArchive", "/app-versions/:id/archive", {
      params: idParam,
      // The source store caps the size (and answers 413 in the API's own words), so none is set here.
      payload: [
        HttpApiSchema.StreamUint8Array({
          contentType: ["application/gzip", "application/x-gzip", "application/octet-stream"]
        }),
        Schema.Struct({}).pipe(HttpApiSchema.asMultipartStream())
      ],
      success: AppVersionView,
      error: [BadRequest, Forbidden, NotFound, Conflict, PayloadTooLarge]
    })
  )
  .middleware(Authorization)
  .prefix("/api") {}

/**
 * `"*"`, or the workspaces by id as clients send them: the handler decodes each, and one that is no
 * workspace id is not found, as a missing workspace is.
 */
const TokenWorkspacesInput = Schema.Union([
  Schema.Literal("*"),
  Schema.Array(Text(100)).check(Schema.isMinLength(1), Schema.isMaxLength(100))
])

export class TokensGroup extends HttpApiGroup.make("tokens")
  .add(
    HttpApiEndpoint.get("list", "/tokens", {
      query: listQuery,
      success: page(TokenView),
      error: [BadRequest, Forbidden]
    }),
    HttpApiEndpoint.post("create", "/tokens", {
      payload: Schema.Struct({
        name: Workspace.NewName,
        workspaceIds: TokenWorkspacesInput,
        role: ApiToken.Role,
        expiresAt: Schema.optionalKey(Schema.NullOr(Schema.DateTimeUtc))
      }),
      success: CreatedTokenView.pipe(HttpApiSchema.status(201)),
      error: [BadRequest, Forbidden, NotFound]
    }),
    HttpApiEndpoint.get("get", "/tokens/:id", {
      params: idParam,
      success: TokenView,
      error: [Forbidden, NotFound]
    }),
    HttpApiEndpoint.delete("revoke", "/tokens/:id", {
      params: idParam,
      success: TokenView,
      error: [Forbidden, NotFound]
    })
  )
  .middleware(Authorization)
  .prefix("/api") {}

// -----------------------------------------------------------------------------------------------------
// The deployments dialect (`/api/v1/deployments`, the seed-001 contract)
// -----------------------------------------------------------------------------------------------------

/** A deployment is an app: its subdomain is the app's handle, its id the UUID the app id encodes. */
export const DeploymentView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  subdomain: Schema.String,
  repo_url: Schema.NullOr(Schema.String),
  branch: Schema.NullOr(Schema.String),
  dockerfile_path: Schema.String,
  source_type: Schema.Literals(["git", "archive"]),
  /** The status of its newest build, or `created` before the first. */
  status: Schema.Literals(["created", ...DeploymentStatus.literals]),
  created_at: Schema.String,
  updated_at: Schema.String
})
export type DeploymentView = typeof DeploymentView.Type

export const DeploymentBuildView = Schema.Struct({
  id: Schema.String,
  deployment_id: Schema.String,
  status: DeploymentStatus,
  /** The git commit, or the archive's SHA-256. */
  commit_sha: Schema.NullOr(Schema.String),
  /** `{registry}/{subdomain}:{short_hash}`; null until built. */
  image_tag: Schema.NullOr(Schema.String),
  started_at: Schema.NullOr(Schema.String),
  finished_at: Schema.NullOr(Schema.String)
})
export type DeploymentBuildView = typeof DeploymentBuildView.Type

const deployment = { deployment_id: Text(100) }

export class DeploymentsGroup extends HttpApiGroup.make("deployments")
  .add(
    HttpApiEndpoint.get("list", "/deployments", { success: Schema.Array(DeploymentView) }),
    HttpApiEndpoint.post("create", "/deployments", {
      payload: Schema.Struct({
        name: Workspace.NewName,
        subdomain: App.Handle,
        repo_url: Schema.optionalKey(Schema.NullOr(Text(2048))),
        branch: Schema.optionalKey(Schema.NullOr(Text(255))),
        dockerfile_path: Schema.optionalKey(App.RelativePath),
        source_type: Schema.optionalKey(
          Schema.Literals(["git", "archive"]).annotate({
            description:
              "git (needs repo_url) or archive (takes no repo_url or branch); by default git when repo_url is given."
          })
        ),
        /** Which workspace, when the token covers more than one. */
        workspace_id: Schema.optionalKey(Text(100))
      }),
      success: DeploymentView.pipe(HttpApiSchema.status(201)),
      error: [BadRequest, Forbidden, NotFound, Conflict]
    }),
    HttpApiEndpoint.get("get", "/deployments/:deployment_id", {
      params: deployment,
      success: DeploymentView,
      error: NotFound
    }),
    HttpApiEndpoint.post("upload", "/deployments/:deployment_id/upload", {
      params: deployment,
      payload: Schema.Struct({}).pipe(HttpApiSchema.asMultipartStream()),
      success: Schema.Struct({ status: Schema.Literal("uploaded"), size: Schema.Int }),
      error: [BadRequest, Forbidden, NotFound, Conflict, PayloadTooLarge]
    }),
    HttpApiEndpoint.post("deploy", "/deployments/:deployment_id/deploy", {
      params: deployment,
      success: DeploymentBuildView.pipe(HttpApiSchema.status(201)),
      error: [Forbidden, NotFound, Conflict]
    }),
    HttpApiEndpoint.get("builds", "/deployments/:deployment_id/builds", {
      params: deployment,
      success: Schema.Array(DeploymentBuildView),
      error: NotFound
    }),
    HttpApiEndpoint.get("build", "/deployments/:deployment_id/builds/:build_id", {
      params: { ...deployment, build_id: Text(100) },
      success: DeploymentBuildView,
      error: NotFound
    }),
    HttpApiEndpoint.get("logs", "/deployments/:deployment_id/builds/:build_id/logs", {
      params: { ...deployment, build_id: Text(100) },
      success: Schema.String.pipe(HttpApiSchema.asText()),
      error: NotFound
    }),
    HttpApiEndpoint.post("logTicket", "/deployments/:deployment_id/builds/:build_id/logs/ticket", {
      params: { ...deployment, build_id: Text(100) },
      success: DeploymentLogTicketView,
      error: [Forbidden, NotFound]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "A ticket to follow the build's log from a browser",
        description: ticketDescription(
          `/api/v1/deployments/\${id}/builds/\${buildId}/logs/ticket`,
          "expires_at"
        )
      })
    )
  )
  .middleware(Authorization)
  .prefix("/api/v1") {}

export class KilnApi extends HttpApi.make("kiln")
  .add(BuildsGroup)
  .add(WorkspacesGroup)
  .add(AppsGroup)
  .add(AppVersionsGroup)
  .add(TokensGroup)
  .middleware(RequestErrors)
  .annotate(HttpApi.PayloadParseOptions, { onExcessProperty: "error" })
  .annotateMerge(
    OpenApi.annotations({
      title: "Kiln",
      version: "0.1.0",
      description:
        "Build orchestration: queue builds of your source, run them in containers, follow their logs, cancel them, and query them.",
      transform: (spec) => ({
        ...spec,
        paths: { ...spec.paths, ...logStreamPath, ...pushPath }
      })
    })
  ) {}

/** The deployments dialect as an API of its own, so that a host can serve it or leave it out. */
export class DeploymentsApi extends HttpApi.make("kiln-deployments")
  .add(DeploymentsGroup)
  .middleware(RequestErrors)
  .annotate(HttpApi.PayloadParseOptions, { onExcessProperty: "error" })
  .annotateMerge(
    OpenApi.annotations({
      title: "Kiln — deployments dialect",
      version: "0.1.0",
      description: "Deployments and their builds: bare arrays, plain-text logs and a raw-line log stream.",
      transform: (spec) => ({ ...spec, paths: { ...spec.paths, ...deploymentLogStreamPath } })
    })
  ) {}
