/**
 * The labels on everything a run creates. A sweep finds by them what a crashed process left behind; the
 * namespace keeps Kiln deployments (or test runs) that share one engine out of each other's sweeps.
 */
import type { Runner } from "@kiln/core"
import type { Labels } from "./DockerClient.ts"

export const managed = "dev.kiln.managed"
export const buildId = "dev.kiln.build-id"
export const attempt = "dev.kiln.attempt"
export const owner = "dev.kiln.owner"
export const namespace = "dev.kiln.namespace"

/** What every resource of this namespace carries: how to list them. */
export const selector = (name: string): Labels => ({ [managed]: "true", [namespace]: name })

export const forRun = (spec: Runner.RunSpec, name: string): Labels => ({
  ...selector(name),
  [buildId]: spec.buildId,
  [attempt]: String(spec.attempt),
  [owner]: spec.owner
})
