/** `GET /healthz` and `GET /readyz`: their paths and OpenAPI description (the routes live beside the HttpApi). */

export const healthPath = "/healthz"
export const readyPath = "/readyz"

const probe = {
  type: "string",
  enum: ["ok", "unavailable", "timed_out"],
  description:
    "ok; unavailable (it answered with an error, which goes to the server's log); timed_out (no answer within 2 s)."
}

export const healthPaths = {
  [healthPath]: {
    get: {
      tags: ["health"],
      operationId: "health.live",
      summary: "Liveness",
      description:
        'Not authenticated. Answers 200 `{"status": "ok"}` while the process serves requests; it checks nothing else.',
      responses: { "200": { description: "The process answers." } }
    }
  },
  [readyPath]: {
    get: {
      tags: ["health"],
      operationId: "health.ready",
      summary: "Readiness",
      description:
        "Not authenticated. Checks that the storage answers, and the runner's engine (Docker) when this process " +
        "runs builds. Answers 200 when every check is ok, 503 naming the one that is not. One answer is shared by " +
        "the probes that arrive within a second of it, so probes cost the storage one round trip a second at most.",
      responses: {
        "200": {
          description: "Every check answered.",
          content: { "application/json": { schema: readiness("ready") } }
        },
        "503": {
          description: "A check did not answer: `checks` says which.",
          content: { "application/json": { schema: readiness("unavailable") } }
        }
      }
    }
  }
}

function readiness(status: string) {
  return {
    type: "object",
    required: ["status", "checks"],
    properties: {
      status: { type: "string", enum: [status] },
      checks: {
        type: "object",
        required: ["storage"],
        properties: { storage: probe, runner: probe }
      }
    }
  }
}
