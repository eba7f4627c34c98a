/**
 * A build's log as the API shows it: its pages, the messages and subprotocols of its WebSocket stream, the
 * tickets a browser follows it with, and the streams' OpenAPI descriptions (HttpApi does not serve
 * WebSockets, so the routes live beside it, in `internal/logStream.ts`, and are described here by hand).
 */
import { BuildState, LogLine } from "@kiln/core"
import { Schema } from "effect"

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

/** The close code of a log stream whose log retention expired: the lines are gone, as HTTP's 410 says. */
export const logsExpiredCode = 4410

/** The subprotocol a log stream client offers; the server answers with it, so a token is never echoed. */
export const logStreamProtocol = "kiln"
/** Browsers cannot set headers on a WebSocket: they offer `bearer.<token>` as a subprotocol instead. */
export const logStreamTokenProtocol = "bearer."

/** How the ticket endpoints explain tickets, with the browser code that uses one (`ticketPath` in JS). */
export const ticketDescription = (ticketPath: string, expiresField: string) =>
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

/** A refusal before a WebSocket upgrade, for the OpenAPI document: the API's error body. */
export const refusal = (description: string) => ({
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

/**
 * The log stream, for the OpenAPI document: HttpApi does not serve WebSockets, so the route lives
 * beside it (`internal/logStream.ts`) and is described here by hand.
 */
export const logStreamPath = {
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
        "cursor <cursor>`, after every line sent: reconnect with that cursor. A client whose token (or its " +
        "ticket's) is revoked or expires while it follows is closed within 5 s with 4403 (`token revoked`) or " +
        "4401 (`token expired`). A build whose log retention expired is closed right after the upgrade with " +
        "4410, reason `logs_expired` (`GET /api/builds/{id}/logs` answers 410 for it). Browsers, which " +
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

/** The deployments dialect's log stream, also a WebSocket beside the HttpApi. */
export const deploymentLogStreamPath = {
  "/api/v1/deployments/{deployment_id}/builds/{build_id}/logs/stream": {
    get: {
      tags: ["deployments"],
      operationId: "deployments.logStream",
      summary: "Follow a deployment build's log over a WebSocket",
      description:
        "Upgrades to a WebSocket that sends each log line's text, as it is produced, then closes with 1000 once " +
        "the build has stopped and every line was sent. A client that stops reading is closed with 4008, one " +
        "whose token ends with 4403 or 4401, and one for a log that retention expired at once with 4410, as on the " +
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
