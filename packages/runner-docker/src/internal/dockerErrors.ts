/**
 * What a failed dockerode call means, decided in one place: Docker's status codes and Node's socket codes
 * become `RunnerError`s with Docker's own words, or `"settled"` where the answer means the work is done.
 */
import { RunnerError } from "@kiln/core"

/** What Kiln asks of Docker, named for messages. */
export type Operation =
  | "connect"
  | "build image"
  | "push image"
  | "pull image"
  | "inspect image"
  | "list images"
  | "remove image"
  | "create container"
  | "start container"
  | "stop container"
  | "remove container"
  | "inspect container"
  | "list containers"
  | "copy files into container"
  | "create exec"
  | "start exec"
  | "inspect exec"

/** Operations where Docker's "already stopped" (304) or "no such object" (404) answer means done. */
export type Settling =
  | "stop container"
  | "remove container"
  | "remove image"
  | "inspect container"
  | "inspect image"

/**
 * What a failed dockerode call means. For a settling operation the answer may be `"settled"`: the container
 * is already stopped or gone, the image already removed, or the inspected object absent. Otherwise:
 * Unavailable when the engine cannot be reached (retrying can help); BuildFailed when the engine refused
 * the build, push or pull with its own reason; Internal for anything else. Messages carry Docker's text.
 */
export function classifyError(operation: Settling, cause: unknown): RunnerError.RunnerError | "settled"
export function classifyError(
  operation: Exclude<Operation, Settling>,
  cause: unknown
): RunnerError.RunnerError
export function classifyError(operation: Operation, cause: unknown): RunnerError.RunnerError | "settled" {
  if (cause instanceof RunnerError.RunnerError) return cause
  const status = numberField(cause, "statusCode")
  const message = dockerMessage(cause)
  if (status === undefined) {
    const code = stringField(cause, "code")
    return code !== undefined && unreachableCodes.has(code)
      ? new RunnerError.RunnerError({
          reason: "Unavailable",
          message: `the Docker engine cannot be reached: ${message}`,
          cause
        })
      : new RunnerError.RunnerError({
          reason: "Internal",
          message: `Docker could not ${operation}: ${message}`,
          cause
        })
  }
  if (settles(operation, status, message)) return "settled"
  if (status >= 502 && status <= 504)
    return new RunnerError.RunnerError({
      reason: "Unavailable",
      message: `the Docker engine is unavailable: ${message}`,
      cause
    })
  if (refusals.has(operation) && (status === 400 || status === 404 || status === 500))
    return new RunnerError.RunnerError({ reason: "BuildFailed", message, cause })
  return new RunnerError.RunnerError({
    reason: "Internal",
    message: `Docker could not ${operation}: ${message}`,
    cause
  })
}

// Node's codes for a socket or host that cannot be reached, or a connection that broke.
const unreachableCodes = new Set([
  "ENOENT",
  "EACCES",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN"
])

// The engine refusing these is the build's own failure (a Dockerfile error, a missing image, a registry's no).
const refusals: ReadonlySet<Operation> = new Set(["build image", "push image", "pull image"])

const settles = (operation: Operation, status: number, message: string): boolean => {
  switch (operation) {
    case "stop container":
      return status === 304 || status === 404
    case "remove container":
      // The engine may already be removing it (a cancelled build's container): it will be gone.
      return status === 404 || (status === 409 && message.includes("already in progress"))
    case "remove image":
    case "inspect container":
    case "inspect image":
      return status === 404
    default:
      return false
  }
}

const field = (value: unknown, name: string): unknown =>
  typeof value === "object" && value !== null && name in value
    ? (value as Record<string, unknown>)[name]
    : undefined

const numberField = (value: unknown, name: string) => {
  const found = field(value, name)
  return typeof found === "number" ? found : undefined
}

const stringField = (value: unknown, name: string) => {
  const found = field(value, name)
  return typeof found === "string" ? found : undefined
}

/** Docker's own words: the JSON body's message, else dockerode's text without its "(HTTP code …) … - " prefix. */
const dockerMessage = (cause: unknown): string => {
  const json = stringField(field(cause, "json"), "message")
  if (json !== undefined) return json.trim()
  const text = stringField(cause, "message") ?? String(cause)
  return text.replace(/^\(HTTP code \d+\) [^-]*- /, "").trim()
}
