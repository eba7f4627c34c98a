/**
 * The tagged images runs built, for retention to keep or remove. Those left without a tag are resources
 * instead, for the sweep (`resources.ts`).
 */
import type { Runner, RunnerError } from "@kiln/core"
import { Effect } from "effect"
import * as Labels from "./labels.ts"
import type { Settings } from "./settings.ts"

export const list = (
  settings: Settings
): Effect.Effect<ReadonlyArray<Runner.BuiltImage>, RunnerError.RunnerError> =>
  settings.client.listTaggedImages(Labels.selector(settings.namespace)).pipe(
    Effect.map((images) =>
      images.flatMap(({ id, labels, references }) => {
        const buildId = labels[Labels.buildId]
        // Without a build id no build can say whether to keep it, so retention leaves it alone.
        return buildId === undefined ? [] : [{ id, references, buildId }]
      })
    )
  )

/**
 * Removes the image's tags one by one: the last one removes the image. By id, the engine would refuse an
 * image with several tags unless forced, and forcing would also take one a container uses.
 */
export const remove = (
  settings: Settings,
  image: Runner.BuiltImage
): Effect.Effect<void, RunnerError.RunnerError> =>
  Effect.forEach(image.references, (reference) => settings.client.removeImage(reference), { discard: true })
