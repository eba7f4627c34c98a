/**
 * The queue wait and duration of a finished build, as `KilnMetrics` records them: a build the engine
 * claimed ahead and held before a slot started it waited in the queue for that time too, though its
 * `startedAt` (the claim) puts it in the run.
 */
import { it } from "@effect/vitest"
import { Storage } from "@kiln/core"
import { StorageConformance } from "@kiln/core/testing"
import { KilnMetrics } from "@kiln/http"
import { DateTime, Effect } from "effect"
import { expect } from "vitest"

const sample = (text: string, name: string) =>
  Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN)

it.effect("counts the time a build was held after its claim as queue wait, not run time", () =>
  Effect.gen(function* () {
    const metrics = yield* KilnMetrics.make
    const { version } = yield* StorageConformance.seed()
    const [queued] = yield* StorageConformance.queue(version)
    const at = (ms: number) => DateTime.makeUnsafe(1_700_000_000_000 + ms)
    // Created at 0, claimed at 1 s, held 2 s, then ran until 10 s.
    const build = {
      ...queued!,
      status: "completed",
      outcome: "success",
      createdAt: at(0),
      startedAt: at(1000),
      completedAt: at(10_000)
    } as const
    metrics.buildFinished(build, 2000)
    metrics.buildFinished({ ...build, createdAt: at(500) }, 0)
    const text = yield* metrics.scrape
    expect(sample(text, "kiln_build_queue_wait_seconds_sum")).toBeCloseTo(3 + 0.5)
    expect(sample(text, "kiln_build_duration_seconds_sum")).toBeCloseTo(7 + 9)
    expect(sample(text, "kiln_build_queue_wait_seconds_count")).toBe(2)
  }).pipe(Effect.provide(Storage.layerMemory()))
)
