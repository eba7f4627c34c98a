/** `/api/builds`: list, create, get with steps, cancel, redeploy, log pages and log tickets. */
import { Build } from "@kiln/core"
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { BadRequest, Conflict, Forbidden, Gone, NotFound } from "../../ApiError.ts"
import { Authorization, idParam, listQuery, optionalText, page, Text } from "./contract.ts"
import { LogPageView, LogTicketView, ticketDescription } from "./logs.ts"

/** A build as every list and response shows it; the claim's lease details stay inside. */
export const BuildView = Build.View
export type BuildView = typeof BuildView.Type

/** `GET /api/builds/{id}`: the build with its steps. */
export const BuildDetailView = BuildView.mapFields((fields) => ({
  ...fields,
  steps: Schema.Array(Build.BuildStep)
}))
export type BuildDetailView = typeof BuildDetailView.Type

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
      error: [BadRequest, NotFound, Gone]
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
