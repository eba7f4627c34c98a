import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { afterAll } from "vitest"
import { DockerRunner } from "../src/index.ts"
import {
  commandsSpec,
  describeDocker,
  docker,
  dockerfileSpec,
  dockerLines,
  exists,
  hex,
  namespaceOf,
  removeNamespace,
  runInBackground,
  unavailable
} from "./fixtures.ts"

const namespace = namespaceOf("cancel")
const stopGraceMs = 2_000

afterAll(() => {
  if (unavailable === undefined) removeNamespace(namespace)
})

/** Every container, with its full command, whatever created it. */
const allContainers = () => dockerLines("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}")

describeDocker("docker › cancel", () => {
  it.live(
    "an interrupted image build is aborted, and leaves no build container behind",
    () =>
      Effect.gen(function* () {
        const marker = hex(12)
        const spec = dockerfileSpec({ Dockerfile: `FROM busybox\nRUN echo started-${marker}; sleep 600\n` })
        const run = yield* runInBackground(spec)
        yield* run.waitFor(`started-${marker}`)
        const running = run.seen.flatMap((e) =>
          e._tag === "Log" ? (/^ ---> Running in ([0-9a-f]+)$/.exec(e.text)?.[1] ?? []) : []
        )
        expect(running).toHaveLength(1)
        expect(allContainers().some((c) => c.includes(marker))).toBe(true)

        const took = yield* run.interrupt
        console.info(`dockerfile cancel to cleanup: ${took} ms`)
        expect(took).toBeLessThan(stopGraceMs + 2_000)
        expect(exists("container", running[0]!)).toBe(false)
        expect(allContainers().filter((c) => c.includes(marker))).toEqual([])
        expect(exists("image", `${spec.app.handle}:${spec.version.commitSha!.slice(0, 8)}`)).toBe(false)
      }).pipe(Effect.provide(DockerRunner.layer({ namespace, stopGraceMs }))),
    60_000
  )

  it.live(
    "an interrupted command is stopped, and its container removed, before the interruption completes",
    () =>
      Effect.gen(function* () {
        const spec = commandsSpec("echo started; sleep 600")
        const run = yield* runInBackground(spec)
        yield* run.waitFor("started")
        const filter = `label=dev.kiln.build-id=${spec.buildId}`
        expect(dockerLines("ps", "-q", "--filter", filter)).toHaveLength(1)

        const took = yield* run.interrupt
        console.info(`commands cancel to cleanup: ${took} ms`)
        expect(took).toBeLessThan(stopGraceMs + 2_000)
        expect(dockerLines("ps", "-aq", "--filter", filter)).toEqual([])
      }).pipe(Effect.provide(DockerRunner.layer({ namespace, stopGraceMs }))),
    60_000
  )

  it.live(
    "a command that ignores SIGTERM is killed when the default 10 s grace period ends",
    () =>
      Effect.gen(function* () {
        const spec = commandsSpec("trap '' TERM; echo started; sleep 600")
        const run = yield* runInBackground(spec)
        yield* run.waitFor("started")
        const took = yield* run.interrupt
        console.info(`commands cancel to cleanup, SIGTERM ignored: ${took} ms`)
        expect(took).toBeGreaterThanOrEqual(9_000)
        expect(took).toBeLessThan(10_000 + 2_000)
        expect(docker("ps", "-aq", "--filter", `label=dev.kiln.build-id=${spec.buildId}`)).toBe("")
      }).pipe(Effect.provide(DockerRunner.layer({ namespace }))),
    60_000
  )
})
