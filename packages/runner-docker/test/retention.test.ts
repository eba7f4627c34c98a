/**
 * Image retention end to end: the real engine builds `dockerfile` versions on the real Docker engine, and
 * its retention passes remove the images of all but the app's newest successful build, except a pinned one.
 *
 * Storage is the in-memory one: `@kiln/adapter-sqlite` is not a dependency of this package.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { Access, App, AppVersion, Engine, Runner, SourceStore, Storage } from "@kiln/core"
import { Builds, RunnerConformance } from "@kiln/core/testing"
import { Effect, Layer, Stream } from "effect"
import { afterAll } from "vitest"
import { DockerRunner } from "../src/index.ts"
import { describeDocker, exists, hex, namespaceOf, removeNamespace, unavailable } from "./fixtures.ts"

const namespace = namespaceOf("retention")
const dir = mkdtempSync(join(tmpdir(), "kiln-retention-"))

afterAll(() => {
  if (unavailable === undefined) removeNamespace(namespace)
  rmSync(dir, { recursive: true, force: true })
})

const base = Layer.mergeAll(
  Storage.layerMemory(),
  SourceStore.layer({ directory: dir }),
  DockerRunner.layer({ namespace })
)

/** The runner's tagged images of this namespace, as sorted references. */
const references = Effect.gen(function* () {
  const runner = yield* Runner.Runner
  return (yield* runner.images!).flatMap((image) => image.references).sort()
})

describeDocker("docker › image retention through the engine", () => {
  it.live(
    "keeps the newest successful build's image and the pinned one, removes the rest",
    () =>
      Effect.gen(function* () {
        const storage = yield* Storage.Storage
        const sources = yield* SourceStore.SourceStore
        const workspace = yield* storage.createWorkspace({ name: "acme" })
        const handle = `kiln-test-${hex(10)}`
        const app = yield* storage.createApp(Access.all, {
          workspaceId: workspace.id,
          handle,
          name: "Retained",
          kind: "app",
          build: { ...App.defaultBuildSettings, strategy: "dockerfile" }
        })
        // Three versions, each with a file of its own: three archives, three commit shas, three images.
        const versions = yield* Effect.forEach([1, 2, 3], (n) =>
          Effect.gen(function* () {
            const stored = yield* sources.putArchive(
              Stream.fromEffect(
                RunnerConformance.archiveOf({
                  Dockerfile: "FROM busybox\nCOPY version.txt /version.txt\n",
                  "version.txt": `version ${n} ${hex(16)}\n`
                })
              )
            )
            const version = yield* storage.createAppVersion(Access.all, {
              appId: app.id,
              source: { type: "archive" }
            })
            yield* storage.resolveAppVersion(Access.all, version.id, AppVersion.archiveStored(stored))
            return { id: version.id, tag: `${handle}:${stored.sha256.slice(0, 8)}` }
          })
        )
        const pinned = versions[0]!.tag

        const built = yield* Effect.gen(function* () {
          const tags: Array<string> = []
          for (const version of versions) {
            const build = yield* storage.createBuild(Access.all, {
              appVersionId: version.id,
              trigger: "manual",
              createdBy: "test",
              triggerMetadata: null
            })
            const done = yield* Builds.stopped(build.id, "60 seconds")
            expect(done, done.error ?? undefined).toMatchObject({ status: "completed", outcome: "success" })
            expect(done.imageTag).toBe(version.tag)
            tags.push(done.imageTag!)
          }
          // Passes every 300 ms: within a few of the last build, only the newest and the pinned image remain.
          const wanted = [tags[0]!, tags[2]!].sort()
          let seen: ReadonlyArray<string> = []
          const deadline = Date.now() + 20_000
          while (Date.now() < deadline) {
            seen = yield* references
            if (JSON.stringify(seen) === JSON.stringify(wanted)) break
            yield* Effect.sleep("100 millis")
          }
          expect(seen).toEqual(wanted)
          return tags
        }).pipe(
          Effect.provide(
            Engine.layer({
              retention: { keepImages: 1, every: "300 millis", pinnedImages: Effect.succeed([pinned]) },
              pollIntervalMs: 50
            })
          )
        )

        expect(built[0]).toBe(pinned)
        expect(exists("image", built[0]!)).toBe(true)
        expect(exists("image", built[1]!)).toBe(false)
        expect(exists("image", built[2]!)).toBe(true)
      }).pipe(Effect.provide(base)),
    120_000
  )
})
