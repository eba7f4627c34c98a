/** What both strategies run with: the engine, the runner's options resolved, and where events go. */
import type { Runner } from "@kiln/core"
import type { Effect } from "effect"
import type { DockerClient, RegistryAuth } from "./DockerClient.ts"

export interface Settings {
  readonly client: DockerClient
  readonly namespace: string
  readonly stopGraceMs: number
  readonly maxLogBytes: number
  readonly registry: { readonly host: string; readonly auth: RegistryAuth } | undefined
}

export type Emit = (event: Runner.RunnerEvent) => Effect.Effect<void>
