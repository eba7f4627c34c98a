/**
 * Kiln's Runner on Docker, through dockerode (DESIGN.md §7). Two strategies: `dockerfile` builds an image
 * from the context with the engine's classic builder, tags it `{registry/}{handle}:{short hash}` and pushes
 * it when a registry is configured; `commands` runs the build and deploy commands in a builder image with
 * the context in `/workspace`. Everything a run creates is labelled (`dev.kiln.*`) and removed when the run
 * ends, is cancelled or times out (interrupting `run`); `sweep` removes what a crashed process left. The
 * tagged images builds leave are retention's: `images` lists them, `removeImage` removes one.
 *
 * Builds never get the Docker socket or any other host path, run under an init with memory, CPU and pid
 * limits, and have their output's secrets masked.
 */
import { Runner } from "@kiln/core"
import { Effect, Layer, Queue, Redacted, Stream } from "effect"
import * as Commands from "./internal/commands.ts"
import * as DockerClient from "./internal/DockerClient.ts"
import * as Dockerfile from "./internal/dockerfile.ts"
import * as Images from "./internal/images.ts"
import * as Resources from "./internal/resources.ts"
import type { Settings } from "./internal/settings.ts"

export type { Connection } from "./internal/DockerClient.ts"

export interface Registry {
  /** Where images are pushed, e.g. `registry.example.com` or `127.0.0.1:5000`; it prefixes their tags. */
  readonly host: string
  readonly username?: string | undefined
  readonly password?: Redacted.Redacted<string> | undefined
}

export interface Options {
  /** How to reach the engine. Default: `DOCKER_HOST` if set, else the local socket; the API version is negotiated. */
  readonly docker?: DockerClient.Connection | undefined
  /** Tag images for this registry and push them after the build. Default: none, images stay local. */
  readonly registry?: Registry | undefined
  /** How long a stopped build has between SIGTERM and SIGKILL, in ms (rounded up to seconds). Default 10 000. */
  readonly stopGraceMs?: number | undefined
  /** The cap of each container's own log (json-file driver). Default 10 MiB. */
  readonly maxLogBytes?: number | undefined
  /**
   * Sets apart the resources of Kiln deployments that share one engine: each lists and sweeps only its own
   * namespace. Default `"default"`.
   */
  readonly namespace?: string | undefined
}

export const make = (options: Options = {}): Effect.Effect<Runner.RunnerShape> =>
  Effect.sync(() => {
    const registry = options.registry
    const settings: Settings = {
      client: DockerClient.make(options.docker ?? {}),
      namespace: options.namespace ?? "default",
      stopGraceMs: options.stopGraceMs ?? 10_000,
      maxLogBytes: options.maxLogBytes ?? 10 * 1024 * 1024,
      registry:
        registry === undefined
          ? undefined
          : {
              host: registry.host,
              auth: {
                serveraddress: registry.host,
                ...(registry.username === undefined ? {} : { username: registry.username }),
                ...(registry.password === undefined ? {} : { password: Redacted.value(registry.password) })
              }
            }
    }

    const run = (spec: Runner.RunSpec): Stream.Stream<Runner.RunnerEvent, Runner.RunnerError> =>
      Stream.callback<Runner.RunnerEvent, Runner.RunnerError>(
        (queue) => {
          const emit = (event: Runner.RunnerEvent) => Effect.asVoid(Queue.offer(queue, event))
          const strategy = spec.app.build.strategy === "dockerfile" ? Dockerfile.run : Commands.run
          // The scope closes before the stream ends: cleanup is part of the run, also when it is interrupted.
          return strategy(settings, spec, emit).pipe(Effect.scoped, Effect.andThen(Queue.end(queue)))
        },
        { bufferSize: 256 }
      )

    return {
      run,
      ping: settings.client.ping,
      resources: Resources.list(settings),
      sweep: (active) => Resources.sweep(settings, active),
      images: Images.list(settings),
      removeImage: (image) => Images.remove(settings, image)
    } satisfies Runner.RunnerShape
  })

export const layer = (options: Options = {}): Layer.Layer<Runner.Runner> =>
  Layer.effect(Runner.Runner, make(options))
