/**
 * What runs created and have not removed yet, found by label: containers, and images left without a tag
 * (a build whose tag moved on to a newer image). A sweep removes those of builds no longer live.
 */
import type { Runner, RunnerError } from "@kiln/core"
import { Effect, Option } from "effect"
import type { Listed } from "./DockerClient.ts"
import * as Labels from "./labels.ts"
import type { Settings } from "./settings.ts"

export const list = (
  settings: Settings
): Effect.Effect<ReadonlyArray<Runner.Resource>, RunnerError.RunnerError> =>
  Effect.all(
    [
      settings.client.listContainers(Labels.selector(settings.namespace)),
      settings.client.listDanglingImages(Labels.selector(settings.namespace))
    ],
    { concurrency: "unbounded" }
  ).pipe(
    Effect.map(([containers, images]) => [
      ...containers.map((c) => resource("container", c)),
      ...images.map((i) => resource("image", i))
    ])
  )

/**
 * Stops and removes the containers, then removes the images, of every build `activeAmong` does not name.
 * One that cannot be removed is left for the next sweep (and logged); only an unreachable engine fails
 * the sweep.
 */
export const sweep = (
  settings: Settings,
  activeAmong: Runner.ActiveAmong
): Effect.Effect<ReadonlyArray<Runner.Resource>, RunnerError.RunnerError> =>
  Effect.gen(function* () {
    const { client } = settings
    const listed = yield* list(settings)
    const active = yield* activeAmong([...new Set(listed.map((r) => r.buildId))])
    const orphans = listed.filter((r) => !active.has(r.buildId))
    const remove = (r: Runner.Resource) =>
      (r.kind === "container"
        ? client.stopContainer(r.id, settings.stopGraceMs).pipe(Effect.andThen(client.removeContainer(r.id)))
        : client.removeImage(r.id)
      ).pipe(
        Effect.as(Option.some(r)),
        Effect.catchIf(
          (error) => error.reason !== "Unavailable",
          (error) =>
            Effect.logWarning(`sweep could not remove ${r.kind} ${r.id}`, error).pipe(
              Effect.as(Option.none())
            )
        )
      )
    const removeAll = (kind: Runner.Resource["kind"]) =>
      Effect.forEach(
        orphans.filter((r) => r.kind === kind),
        remove,
        { concurrency: 8 }
      )
    // Containers first: an image cannot go while a container still uses it.
    const containers = yield* removeAll("container")
    const images = yield* removeAll("image")
    return [...containers, ...images].flatMap((removed) => (Option.isSome(removed) ? [removed.value] : []))
  })

const resource = (kind: Runner.Resource["kind"], listed: Listed): Runner.Resource => ({
  kind,
  id: listed.id,
  buildId: listed.labels[Labels.buildId] ?? ""
})
