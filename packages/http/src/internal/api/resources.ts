/** The resources builds are made from: workspaces, apps, app versions (with archive upload), and tokens. */
import { ApiToken, App, AppVersion, Workspace } from "@kiln/core"
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema } from "effect/http-api"
import {
  BadRequest,
  Conflict,
  Forbidden,
  NotFound,
  PayloadTooLarge,
  ServiceUnavailable
} from "../../ApiError.ts"
import { Authorization, idParam, listQuery, optionalText, page, Text } from "./contract.ts"

export const WorkspaceView = Workspace.Workspace
export const AppView = App.App
export const AppVersionView = AppVersion.AppVersion
export const TokenView = ApiToken.ApiToken
/** A token as created: with its secret, shown this once. */
export const CreatedTokenView = ApiToken.ApiToken.mapFields((fields) => ({ ...fields, token: Schema.String }))

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
