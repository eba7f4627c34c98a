/**
 * The hand-written JSON of the build views (`internal/views.ts`, for the hot read paths) against the
 * schema's own encoding, on random builds: the same text, byte for byte, so the two cannot drift.
 */
import { Access, App, BuildState, Storage } from "@kiln/core"
import { Api } from "@kiln/http"
import { DateTime, Effect, Schema } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { buildDetailJson, buildJson } from "../src/internal/views.ts"

/** A real build to vary: its ids are valid, and every other field is replaced below. */
const base = await Effect.runPromise(
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const workspace = yield* storage.createWorkspace({ name: "views" })
    const app = yield* storage.createApp(Access.all, {
      workspaceId: workspace.id,
      handle: "views",
      name: "Views",
      kind: "app",
      build: App.defaultBuildSettings
    })
    const version = yield* storage.createAppVersion(Access.all, {
      appId: app.id,
      source: { type: "git", url: "https://example.com/r.git", commitSha: "d".repeat(40) }
    })
    const build = yield* storage.createBuild(Access.all, {
      appVersionId: version.id,
      trigger: "manual",
      createdBy: "views"
    })
    return yield* storage.getBuild(Access.all, build.id)
  }).pipe(Effect.provide(Storage.layerMemory()))
)

const time = fc.integer({ min: 0, max: 4_102_444_800_000 }).map((ms) => DateTime.makeUnsafe(ms))
const text = fc.string({ unit: "grapheme", maxLength: 40 })
const nullable = <A>(arbitrary: fc.Arbitrary<A>) => fc.option(arbitrary, { nil: null })
const json = fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 })

// A step has completedAt exactly when it is no longer running (its schema checks that).
const step = fc
  .record({
    index: fc.nat(),
    name: fc.string({ minLength: 1, maxLength: 50 }),
    status: fc.constantFrom("running", "succeeded", "failed", "cancelled"),
    startedAt: time,
    completedAt: time,
    exitCode: nullable(fc.integer()),
    error: nullable(text)
  })
  .map((step) => ({ ...step, completedAt: step.status === "running" ? null : step.completedAt }))

const build = fc
  .record({
    sequenceNumber: fc.integer({ min: 1, max: 1_000_000 }),
    outcome: nullable(fc.constantFrom(...BuildState.Outcome.literals)),
    status: fc.constantFrom(...BuildState.Status.literals),
    trigger: fc.constantFrom("manual", "auto", "redeploy"),
    error: nullable(text),
    metadata: json,
    createdBy: nullable(text),
    createdAt: time,
    updatedAt: time,
    startedAt: nullable(time),
    runningAt: nullable(time),
    completedAt: nullable(time),
    cancelRequestedAt: nullable(time),
    cancelReason: nullable(text),
    skipReason: nullable(text),
    imageTag: nullable(text),
    imageDigest: nullable(text),
    commitSha: nullable(fc.stringMatching(/^[0-9a-f]{40}$/)),
    triggerMetadata: nullable(json),
    steps: fc.array(step, { maxLength: 4 })
  })
  .map((fields) => ({ ...base, ...fields }))

// The views' fields without the cross-field checks, which random values need not satisfy: the checks
// decide what is valid, not how it is written.
const detail = Schema.encodeUnknownSync(Schema.toCodecJson(Schema.Struct(Api.BuildDetailView.fields)))
const summary = Schema.encodeUnknownSync(Schema.toCodecJson(Schema.Struct(Api.BuildView.fields)))

describe("http › build views", () => {
  it("write a build and a build with steps exactly as the schema encodes them", () => {
    fc.assert(
      fc.property(build, (value) => {
        expect(JSON.stringify(buildDetailJson(value))).toBe(JSON.stringify(detail(value)))
        expect(JSON.stringify(buildJson(value))).toBe(JSON.stringify(summary(value)))
      }),
      { numRuns: 500 }
    )
  })
})
