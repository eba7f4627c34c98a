/**
 * Docker's pull and push progress, condensed: each message that is not about one layer (the repository,
 * the digest, the final status) and one line per layer when it completes or fails. The per-byte progress
 * messages in between are dropped.
 */
import type { ProgressMessage } from "./DockerClient.ts"

// A layer's states on its way to done; its final state ("Pushed", "Pull complete", "Layer already exists",
// "Mounted from …", "Already exists") is what the log keeps.
const underway = new Set([
  "Preparing",
  "Waiting",
  "Pushing",
  "Pulling fs layer",
  "Downloading",
  "Verifying Checksum",
  "Download complete",
  "Extracting"
])

/** The log line a status message deserves, if any. */
export const condense = (message: ProgressMessage): string | undefined => {
  const status = message.status
  if (status === undefined) return undefined
  if (message.id === undefined) return status
  return underway.has(status) || status.startsWith("Retrying in") ? undefined : `${message.id}: ${status}`
}

/** The failure a progress message reports, if it is one. */
export const failureOf = (
  message: ProgressMessage
): { readonly message: string; readonly code?: number } | undefined => {
  const text = message.errorDetail?.message ?? message.error
  if (text === undefined) return undefined
  const code = message.errorDetail?.code
  return code === undefined ? { message: text } : { message: text, code }
}
