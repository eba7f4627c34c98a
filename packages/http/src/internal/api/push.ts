/** `POST /api/events/push`: what a source host sends, and its OpenAPI description (the route lives beside the HttpApi). */
import { AppVersion } from "@kiln/core"
import { Schema } from "effect"

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
export const pushPath = {
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
