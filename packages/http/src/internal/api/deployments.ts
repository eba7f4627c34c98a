/**
 * The deployments dialect (`/api/v1/deployments`, the seed-001 contract): deployments (apps) and their
 * builds, in the dialect's spelling.
 */
import { App, Workspace } from "@kiln/core"
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge } from "../../ApiError.ts"
import { DeploymentStatus } from "../dialectStatus.ts"
import { Authorization, Text } from "./contract.ts"
import { DeploymentLogTicketView, ticketDescription } from "./logs.ts"

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
