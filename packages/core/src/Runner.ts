/**
 * A Runner turns a build's source into an artifact in a container (DESIGN.md §3, §7). `run` is a stream
 * of events; interrupting it is how a build is cancelled or timed out, and must stop and remove
 * whatever the run started before the interruption completes. `sweep` removes what a crashed process
 * left behind, found by the labels every run puts on what it creates.
 */
import { Context, Effect, Layer, type Stream } from "effect"
import type { App } from "./App.ts"
import type { AppVersion } from "./AppVersion.ts"
import type { BuildId, WorkspaceId } from "./Id.ts"
import { makeScriptedRunner } from "./internal/scriptedRunner.ts"
import type { LogStream } from "./LogLine.ts"
import type { RunnerError } from "./RunnerError.ts"
import type { SourceError } from "./SourceError.ts"

export interface EnvironmentVariable {
  readonly name: string
  readonly value: string
  /** A secret's value is redacted from every log line, and never stored. */
  readonly secret: boolean
}

export interface RunSpec {
  readonly buildId: BuildId
  readonly workspaceId: WorkspaceId
  /** The claim: runners label what they create with it, so a sweep knows whose it is. */
  readonly owner: string
  readonly attempt: number
  readonly app: App
  readonly version: AppVersion
  /** The build context: an uncompressed tar of the source tree, already rooted at the app's root directory. */
  readonly context: Stream.Stream<Uint8Array, SourceError>
  /** Variables for the `commands` strategy; secret values are redacted from the log. */
  readonly environment: ReadonlyArray<EnvironmentVariable>
}

export type RunnerEvent =
  | { readonly _tag: "StepStarted"; readonly index: number; readonly name: string }
  | { readonly _tag: "Log"; readonly stream: LogStream; readonly step: string | null; readonly text: string }
  | {
      readonly _tag: "StepFinished"
      readonly index: number
      readonly name: string
      readonly status: "succeeded" | "failed"
      readonly exitCode: number | null
    }
  | { readonly _tag: "Artifact"; readonly imageTag: string; readonly imageDigest: string | null }

export { RunnerError, RunnerErrorReason } from "./RunnerError.ts"

/** Something a runner created for a build and has not removed yet. */
export interface Resource {
  readonly kind: "container" | "image"
  readonly id: string
  readonly buildId: string
}

/** An image a run built and tagged, as retention sees it (`Retention`). */
export interface BuiltImage {
  readonly id: string
  /** Its tags, as `repository:tag`. */
  readonly references: ReadonlyArray<string>
  readonly buildId: string
}

/** Which of these builds are still active (claimed and not stopped). */
export type ActiveAmong = (buildIds: ReadonlyArray<string>) => Effect.Effect<ReadonlySet<string>>

/** An answer for tests and simple hosts: exactly these builds are active. */
export const activeOnly =
  (ids: Iterable<string>): ActiveAmong =>
  () =>
    Effect.succeed(new Set(ids))

export interface RunnerShape {
  readonly run: (spec: RunSpec) => Stream.Stream<RunnerEvent, RunnerError>
  /** Succeeds once what the runner drives (a container engine) answers; for readiness checks. */
  readonly ping: Effect.Effect<void, RunnerError>
  /** What runs created and have not removed yet (labelled containers and untagged images). */
  readonly resources: Effect.Effect<ReadonlyArray<Resource>, RunnerError>
  /**
   * Removes what no live build owns: lists its resources first, then asks `activeAmong` which of their
   * builds are still active, and removes the rest. Asking after listing matters: a build is claimed
   * before its container exists, so a container found by the listing belongs to a claim the answer sees.
   */
  readonly sweep: (activeAmong: ActiveAmong) => Effect.Effect<ReadonlyArray<Resource>, RunnerError>
  /** The tagged images runs built, for retention to keep or remove; a runner that keeps none leaves it out. */
  readonly images?: Effect.Effect<ReadonlyArray<BuiltImage>, RunnerError> | undefined
  /**
   * Removes an image runs built, one tag at a time, so that an image a container still uses is refused
   * rather than forced away; one already gone is success.
   */
  readonly removeImage?: ((image: BuiltImage) => Effect.Effect<void, RunnerError>) | undefined
}

export class Runner extends Context.Service<Runner, RunnerShape>()("@kiln/core/Runner") {}

/**
 * A scripted runner for deterministic tests, with no container engine: it runs the `commands`
 * strategy's build and deploy commands as a tiny shell (`echo text`, `echo text >&2`, `sleep seconds`,
 * `exit code`, `true`, `false`, separated by `;`, `&&` or newlines), one step each.
 */
export const layerTest: Layer.Layer<Runner> = Layer.effect(Runner, makeScriptedRunner)
