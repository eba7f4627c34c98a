/**
 * `/api/events`: the feed of what changed, a page at a time from a cursor, and its WebSocket
 * (`/api/events/stream`), which HttpApi does not serve: the route lives beside it
 * (`internal/eventStream.ts`) and is described here by hand.
 */
import { Event } from "@kiln/core"
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup } from "effect/http-api"
import { BadRequest, NotFound } from "../../ApiError.ts"
import { Authorization, optionalText } from "./contract.ts"
import { logStreamProtocol, logStreamTokenProtocol, refusal } from "./logs.ts"

/** An event as the feed shows it: with the cursor that resumes after it. */
export const EventView = Event.Event.mapFields(({ id, ...fields }) => ({
  id,
  cursor: Event.Cursor,
  ...fields
}))
export type EventView = typeof EventView.Type

export const maxFeedLimit = 1000

export const EventPageView = Schema.Struct({
  data: Schema.Array(EventView),
  cursor: Schema.NullOr(Event.Cursor).annotate({
    description:
      "Where to continue: pass it back as `after` (here or to the stream). The last event's cursor, or the " +
      "`after` you sent when there are no new events; null only when you sent none and there are none yet."
  })
})

const typesDescription = `Comma-separated event types (${Event.Type.literals.join(", ")}); default every type.`
const afterDescription =
  "Cursor: the events after this one (an event's or a page's `cursor`); default the start of the feed."
const workspaceDescription = "Only this workspace's events (404 for one the token cannot see)."

export class EventsGroup extends HttpApiGroup.make("events")
  .add(
    HttpApiEndpoint.get("list", "/events", {
      query: {
        after: optionalText(64, afterDescription),
        types: optionalText(1024, typesDescription),
        limit: optionalText(8, `Events per page, 1–${maxFeedLimit} (default 100).`),
        workspace_id: optionalText(100, workspaceDescription)
      },
      success: EventPageView,
      error: [BadRequest, NotFound]
    })
  )
  .middleware(Authorization)
  .prefix("/api") {}

const query = (name: string, description: string) => ({
  name,
  in: "query",
  required: false,
  description,
  schema: { type: "string" }
})

/** The feed's WebSocket, for the OpenAPI document. */
export const eventStreamPath = {
  "/api/events/stream": {
    get: {
      tags: ["events"],
      operationId: "events.stream",
      summary: "Follow the event feed over a WebSocket",
      description:
        "Upgrades to a WebSocket that sends each event of the caller's workspaces as one JSON text message " +
        "(as `GET /api/events` shows it, with its `cursor`): first those after `after`, then new ones as they " +
        "happen, in feed order. Reconnect with the last cursor you received to resume with no gap and no " +
        "duplicate. A client that takes nothing for 30 s while 1 MiB waits for it is closed with 4008, reason " +
        "`slow consumer: resume from cursor <cursor>`, after every event sent: reconnect with that cursor. A " +
        "client whose token is revoked or expires while it follows is closed within 5 s with 4403 (`token " +
        "revoked`) or 4401 (`token expired`). " +
        "Browsers, which cannot set headers here, offer the token as the subprotocol " +
        `\`${logStreamTokenProtocol}<token>\` beside \`${logStreamProtocol}\`, which the server answers with.`,
      security: [{ bearer: [] }, {}],
      parameters: [
        query("after", afterDescription),
        query("types", typesDescription),
        query("workspace_id", workspaceDescription)
      ],
      responses: {
        "101": {
          description: "Switching to the WebSocket; each message is one event.",
          content: { "application/json": { schema: Schema.toJsonSchemaDocument(EventView).schema } }
        },
        "400": refusal("A parameter is malformed: a cursor this API did not issue, or an unknown type."),
        "401": refusal("Missing or invalid credentials."),
        "404": refusal("`workspace_id` names no workspace the caller can see."),
        "426": refusal("Not a WebSocket upgrade: the answer carries `Upgrade: websocket`.")
      }
    }
  }
}
