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

const namespace = namespaceOf("images")
const otherNamespace = `${namespace}-other`
const runner = DockerRunner.layer({ namespace })

afterAll(() => {
  if (unavailable === undefined) {
    removeNamespace(namespace)
    removeNamespace(otherNamespace)
  }
})

/** Builds through a runner of this namespace; returns the image's id and tag. */
const build = (ns = namespace) =>
  Effect.gen(function* () {
    const spec = dockerfileSpec({ Dockerfile: `FROM busybox\nRUN echo ${hex(16)} > /version\n` })
    const { exit } = yield* runToEnd(spec).pipe(Effect.provide(DockerRunner.layer({ namespace: ns })))
    expect(Exit.isSuccess(exit)).toBe(true)
    const tag = tagOf(spec)
    return { id: docker("image", "inspect", "--format", "{{.Id}}", tag), tag, buildId: spec.buildId }
  })

describeDocker("docker › built images", () => {
  it.live(
    "lists the tagged images of its namespace; removes one tag by tag, never one a container uses",
    () =>
      Effect.gen(function* () {
        const runner = yield* Runner.Runner
        const first = yield* build()
        const second = yield* build()
        const elsewhere = yield* build(otherNamespace)
        // A second tag: the image goes only once both are removed.
        const extraTag = `${first.tag.split(":")[0]}:extra`
        docker("tag", first.tag, extraTag)
        // Labelled as this namespace's but by no build: nothing for retention to weigh it by.
        const noBuild = `kiln-test-${hex(10)}:nobuild`
        execFileSync(
          "docker",
          [
            "build",
            "-q",
            "-t",
            noBuild,
            "--label",
            "dev.kiln.managed=true",
            "--label",
            `dev.kiln.namespace=${namespace}`,
            "-"
          ],
          {
            input: `FROM ${builderImage}\nLABEL kiln.test.marker=${hex(16)}\n`,
            encoding: "utf8",
            env: { ...process.env, DOCKER_BUILDKIT: "0" }
          }
        )

        const listed = yield* runner.images!
        expect(listed).toHaveLength(2)
        expect(listed).toEqual(
          expect.arrayContaining([
            {
              id: first.id,
              references: expect.arrayContaining([first.tag, extraTag]),
              buildId: first.buildId
            },
            { id: second.id, references: [second.tag], buildId: second.buildId }
          ])
        )
        expect(listed.find((image) => image.id === first.id)?.references).toHaveLength(2)
        expect(listed.some((image) => image.id === elsewhere.id)).toBe(false)

        const removeImage = runner.removeImage!
        yield* removeImage(listed.find((image) => image.id === first.id)!)
        expect(exists("image", first.id)).toBe(false)
        expect(exists("image", second.id)).toBe(true)
        expect(exists("image", elsewhere.id)).toBe(true)
        expect((yield* runner.images!).map((image) => image.id)).toEqual([second.id])
        // Already gone is success.
        yield* removeImage({ id: first.id, references: [first.tag, extraTag], buildId: first.buildId })

        // Labelled as this namespace's so that `removeNamespace` cleans up after a failed run.
        const container = docker("create", "--label", `dev.kiln.namespace=${namespace}`, second.tag, "true")
        const refused = yield* Effect.flip(
          removeImage({ id: second.id, references: [second.tag], buildId: second.buildId })
        )
        expect(refused).toMatchObject({ _tag: "RunnerError", reason: "Internal" })
        expect(refused.retryable).toBe(false)
        expect(refused.message).toContain(container.slice(0, 12))
        expect(exists("image", second.id)).toBe(true)
        expect(docker("image", "inspect", "--format", "{{.Id}}", second.tag)).toBe(second.id)

        docker("rm", container)
        yield* removeImage({ id: second.id, references: [second.tag], buildId: second.buildId })
        expect(exists("image", second.id)).toBe(false)
        expect(yield* runner.images!).toEqual([])
      }).pipe(Effect.provide(runner)),
    90_000
  )
})
