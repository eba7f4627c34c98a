import { execFileSync } from "node:child_process"
import { expect, it } from "@effect/vitest"
import { Runner } from "@kiln/core"
import { Effect, Exit } from "effect"
import { afterAll } from "vitest"
import { DockerRunner } from "../src/index.ts"
import {
  builderImage,
  describeDocker,
  docker,
  dockerfileSpec,
  exists,
  hex,
  namespaceOf,
  removeNamespace,
  runToEnd,
  tagOf,
  unavailable
} from "./fixtures.ts"

const namespace = namespaceOf("sweep")
const runner = DockerRunner.layer({ namespace, stopGraceMs: 2_000 })

afterAll(() => {
  if (unavailable === undefined) removeNamespace(namespace)
})

const labels = (buildId: string, ns = namespace) =>
  [
    `dev.kiln.managed=true`,
    `dev.kiln.namespace=${ns}`,
    `dev.kiln.build-id=${buildId}`,
    "dev.kiln.attempt=1",
    "dev.kiln.owner=crashed-process"
  ].flatMap((label) => ["--label", label])

/** A labelled container, as a process that crashed mid-build leaves it: running, or created only. */
const leftContainer = (buildId: string, ns = namespace, started = true) =>
  docker(
    ...(started ? ["run", "-d"] : ["create"]),
    "--init",
    ...labels(buildId, ns),
    builderImage,
    "sleep",
    "600"
  )

/** A labelled image with no tag, as a build whose tag moved on to a newer image leaves it. */
const danglingImage = (buildId: string) =>
  execFileSync("docker", ["build", "-q", ...labels(buildId), "-"], {
    input: `FROM ${builderImage}\nLABEL kiln.test.marker=${hex(16)}\n`,
    encoding: "utf8",
    env: { ...process.env, DOCKER_BUILDKIT: "0" }
  }).trim()

describeDocker("docker › resources and sweep", () => {
  it.live(
    "removes what no live build owns (containers, running or not, and untagged images), and keeps the rest",
    () =>
      Effect.gen(function* () {
        const runner = yield* Runner.Runner
        const [orphan, live, imageOwner] = [`bld_orphan${hex(8)}`, `bld_live${hex(8)}`, `bld_image${hex(8)}`]
        const orphanContainer = leftContainer(orphan)
        const orphanCreated = leftContainer(orphan, namespace, false)
        const liveContainer = leftContainer(live)
        const image = danglingImage(imageOwner)
        const otherNamespace = leftContainer(orphan, `${namespace}-other`)

        const before = yield* runner.resources
        expect(before).toEqual(
          expect.arrayContaining([
            { kind: "container", id: orphanContainer, buildId: orphan },
            { kind: "container", id: orphanCreated, buildId: orphan },
            { kind: "container", id: liveContainer, buildId: live },
            { kind: "image", id: image, buildId: imageOwner }
          ])
        )
        expect(before.some((r) => r.id === otherNamespace)).toBe(false)

        const swept = yield* runner.sweep(Runner.activeOnly([live]))
        expect(swept).toEqual(
          expect.arrayContaining([
            { kind: "container", id: orphanContainer, buildId: orphan },
            { kind: "container", id: orphanCreated, buildId: orphan },
            { kind: "image", id: image, buildId: imageOwner }
          ])
        )
        expect(swept.some((r) => r.buildId === live)).toBe(false)
        expect(exists("container", orphanContainer)).toBe(false)
        expect(exists("container", orphanCreated)).toBe(false)
        expect(exists("image", image)).toBe(false)
        expect(exists("container", liveContainer)).toBe(true)
        // Another namespace's resources are not this runner's to sweep.
        expect(exists("container", otherNamespace)).toBe(true)
        docker("rm", "-f", otherNamespace)

        expect((yield* runner.resources).map((r) => r.id)).toEqual([liveContainer])
        expect(yield* runner.sweep(Runner.activeOnly([]))).toEqual([
          { kind: "container", id: liveContainer, buildId: live }
        ])
        expect(yield* runner.resources).toEqual([])
      }).pipe(Effect.provide(runner)),
    60_000
  )

  it.live(
    "an image a rebuild has untagged is a resource of its build, swept once that build is gone",
    () =>
      Effect.gen(function* () {
        const runner = yield* Runner.Runner
        const first = dockerfileSpec({ Dockerfile: `FROM busybox\nRUN echo ${hex(16)} > /version\n` })
        // A redeploy: the same app and commit, so the same tag, built again (the RUN differs, so a new image).
        const second = {
          ...dockerfileSpec({ Dockerfile: `FROM busybox\nRUN echo ${hex(16)} > /version\n` }),
          app: first.app,
          version: first.version
        }
        expect(Exit.isSuccess((yield* runToEnd(first)).exit)).toBe(true)
        const firstImage = docker("image", "inspect", "--format", "{{.Id}}", tagOf(first))
        expect(Exit.isSuccess((yield* runToEnd(second)).exit)).toBe(true)
        expect(docker("image", "inspect", "--format", "{{.Id}}", tagOf(second))).not.toBe(firstImage)

        expect(yield* runner.resources).toEqual([{ kind: "image", id: firstImage, buildId: first.buildId }])
        expect(yield* runner.sweep(Runner.activeOnly([first.buildId]))).toEqual([])
        expect(yield* runner.sweep(Runner.activeOnly([second.buildId]))).toEqual([
          { kind: "image", id: firstImage, buildId: first.buildId }
        ])
        expect(exists("image", firstImage)).toBe(false)
        expect(exists("image", tagOf(second))).toBe(true)
      }).pipe(Effect.provide(runner)),
    90_000
  )
})
