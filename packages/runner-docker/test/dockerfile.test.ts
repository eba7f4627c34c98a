import { expect, it } from "@effect/vitest"
import { SourceError } from "@kiln/core"
import { Effect, Exit, Stream } from "effect"
import { afterAll } from "vitest"
import { DockerRunner } from "../src/index.ts"
import {
  describeDocker,
  docker,
  dockerfileSpec,
  errorOf,
  hex,
  logLines,
  namespaceOf,
  removeNamespace,
  runToEnd,
  stepNames,
  tagOf,
  unavailable
} from "./fixtures.ts"

const namespace = namespaceOf("dockerfile")
const runner = DockerRunner.layer({ namespace })

afterAll(() => {
  if (unavailable === undefined) removeNamespace(namespace)
})

const build = (spec: Parameters<typeof runToEnd>[0]) => runToEnd(spec).pipe(Effect.provide(runner))

describeDocker("docker › dockerfile builds", () => {
  it.live(
    "builds, tags and labels the image; Docker's steps become steps, its output their log, in order",
    () =>
      Effect.gen(function* () {
        const spec = dockerfileSpec({
          Dockerfile: "FROM busybox\nRUN echo one\nRUN echo two >&2; echo three\n",
          "README.md": "hello\n"
        })
        const { events, exit } = yield* build(spec)
        expect(Exit.isSuccess(exit)).toBe(true)

        const tag = tagOf(spec)
        const id = docker("image", "inspect", "--format", "{{.Id}}", tag)
        expect(events.at(-1)).toEqual({ _tag: "Artifact", imageTag: tag, imageDigest: id })
        expect(JSON.parse(docker("image", "inspect", "--format", "{{json .Config.Labels}}", tag))).toEqual({
          "dev.kiln.managed": "true",
          "dev.kiln.namespace": namespace,
          "dev.kiln.build-id": spec.buildId,
          "dev.kiln.attempt": "1",
          "dev.kiln.owner": spec.owner
        })

        // The LABEL step Kiln appends for its labels is not shown: three instructions, three steps.
        expect(stepNames(events)).toEqual([
          "1/3 : FROM busybox",
          "2/3 : RUN echo one",
          "3/3 : RUN echo two >&2; echo three"
        ])
        expect(logLines(events).join("\n")).not.toContain("dev.kiln")
        const shape = events.flatMap((e) =>
          e._tag === "StepStarted"
            ? [`start ${e.index}`]
            : e._tag === "StepFinished"
              ? [`finish ${e.index} ${e.status} ${e.exitCode}`]
              : []
        )
        expect(shape).toEqual([
          "start 0",
          "finish 0 succeeded null",
          "start 1",
          "finish 1 succeeded null",
          "start 2",
          "finish 2 succeeded null"
        ])

        const lines = logLines(events)
        expect(lines[0]).toBe("Step 1/3 : FROM busybox")
        const at = (text: string) => lines.indexOf(text)
        expect(at("Step 2/3 : RUN echo one")).toBeLessThan(at("one"))
        expect(at("one")).toBeLessThan(at("Step 3/3 : RUN echo two >&2; echo three"))
        expect(at("Step 3/3 : RUN echo two >&2; echo three")).toBeLessThan(at("three"))
        expect(lines.at(-1)).toBe(`Successfully tagged ${tag}`)
        // The classic builder marks a RUN's stderr with colour codes: it becomes a clean stderr line.
        expect(events).toContainEqual({
          _tag: "Log",
          stream: "stderr",
          step: "3/3 : RUN echo two >&2; echo three",
          text: "two"
        })
        expect(lines.join("\n")).not.toContain("\u001b")
        // Every line belongs to the step it appeared under.
        for (const event of events) {
          if (event._tag === "Log" && event.text === "one") expect(event.step).toBe("2/3 : RUN echo one")
        }
      }),
    60_000
  )

  it.live(
    "reuses cached layers when caching is on, and rebuilds every layer when it is off",
    () =>
      Effect.gen(function* () {
        const marker = hex(16)
        const files = { Dockerfile: `FROM busybox\nRUN echo ${marker}\n` }
        const first = yield* build(dockerfileSpec(files))
        expect(logLines(first.events)).not.toContain(" ---> Using cache")
        const cached = yield* build(dockerfileSpec(files))
        expect(logLines(cached.events, `2/2 : RUN echo ${marker}`)).toContain(" ---> Using cache")
        const uncached = yield* build(dockerfileSpec(files, { caching: false }))
        expect(Exit.isSuccess(uncached.exit)).toBe(true)
        expect(logLines(uncached.events)).not.toContain(" ---> Using cache")
      }),
    90_000
  )

  it.live(
    "builds the Dockerfile at the app's dockerfile path",
    () =>
      Effect.gen(function* () {
        const spec = dockerfileSpec(
          {
            "docker/web.Dockerfile": "FROM busybox\nCOPY site.txt /site.txt\nRUN cat /site.txt\n",
            "site.txt": "the site\n"
          },
          { dockerfilePath: "docker/web.Dockerfile" }
        )
        const { events, exit } = yield* build(spec)
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(logLines(events, "3/3 : RUN cat /site.txt")).toContain("the site")
      }),
    60_000
  )
})

describeDocker("docker › dockerfile build failures", () => {
  it.live(
    "a Dockerfile the engine cannot parse fails with BuildFailed and Docker's message",
    () =>
      Effect.gen(function* () {
        const { events, exit } = yield* build(dockerfileSpec({ Dockerfile: "FROM busybox\nFOO bar\n" }))
        expect(errorOf(exit)).toMatchObject({
          reason: "BuildFailed",
          message: "dockerfile parse error line 2: unknown instruction: FOO"
        })
        expect(stepNames(events)).toEqual([])
      }),
    60_000
  )

  it.live(
    "a RUN that exits non-zero fails its step and the build with Docker's message and the exit code",
    () =>
      Effect.gen(function* () {
        const spec = dockerfileSpec({ Dockerfile: "FROM busybox\nRUN echo before; exit 3\nRUN echo never\n" })
        const { events, exit } = yield* build(spec)
        const message = "The command '/bin/sh -c echo before; exit 3' returned a non-zero code: 3"
        expect(errorOf(exit)).toMatchObject({ reason: "BuildFailed", message, exitCode: 3 })
        expect(events).toContainEqual({
          _tag: "StepFinished",
          index: 1,
          name: "2/3 : RUN echo before; exit 3",
          status: "failed",
          exitCode: 3
        })
        expect(logLines(events, "2/3 : RUN echo before; exit 3")).toContain("before")
        expect(events.at(-1)).toEqual({
          _tag: "StepFinished",
          index: 1,
          name: "2/3 : RUN echo before; exit 3",
          status: "failed",
          exitCode: 3
        })
        expect(events).toContainEqual({
          _tag: "Log",
          stream: "stderr",
          step: "2/3 : RUN echo before; exit 3",
          text: message
        })
        expect(stepNames(events)).not.toContain("3/3 : RUN echo never")
        expect(docker("images", "-q", tagOf(spec))).toBe("")
      }),
    60_000
  )

  it.live(
    "a base image that cannot be had fails with BuildFailed",
    () =>
      Effect.gen(function* () {
        const { events, exit } = yield* build(
          dockerfileSpec({ Dockerfile: "FROM does-not-exist:1\nRUN true\n" })
        )
        const error = errorOf(exit)
        expect(error).toMatchObject({ reason: "BuildFailed" })
        expect(error?.message.length).toBeGreaterThan(0)
        expect(events).toContainEqual(
          expect.objectContaining({
            _tag: "StepFinished",
            name: "1/2 : FROM does-not-exist:1",
            status: "failed"
          })
        )
      }),
    60_000
  )

  it.live(
    "a missing Dockerfile fails with BuildFailed",
    () =>
      Effect.gen(function* () {
        const { exit } = yield* build(dockerfileSpec({ "README.md": "no Dockerfile here\n" }))
        expect(errorOf(exit)).toMatchObject({ reason: "BuildFailed" })
        expect(errorOf(exit)?.message).toContain("Dockerfile")
      }),
    60_000
  )

  it.live(
    "a source that cannot be read fails with SourceFailed",
    () =>
      Effect.gen(function* () {
        const spec = dockerfileSpec({})
        const broken = Stream.fail(
          new SourceError.SourceError({ reason: "Missing", message: "archive abc is missing" })
        )
        const { events, exit } = yield* build({ ...spec, context: broken })
        expect(errorOf(exit)).toMatchObject({ reason: "SourceFailed", message: "archive abc is missing" })
        expect(logLines(events)).toEqual([])
      }),
    60_000
  )

  it.live(
    "environment variables never reach a Dockerfile build, and secret values are masked in its log",
    () =>
      Effect.gen(function* () {
        const secret = "s3cr3t-T0KEN-value"
        const spec = dockerfileSpec(
          { Dockerfile: `FROM busybox\nRUN echo "token=$API_TOKEN"\nRUN echo ${secret}\n` },
          {},
          [{ name: "API_TOKEN", value: secret, secret: true }]
        )
        const { events, exit } = yield* build(spec)
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(logLines(events)).toContain("token=")
        expect(stepNames(events)).toContain("3/3 : RUN echo ***")
        expect(logLines(events)).toContain("***")
        expect(JSON.stringify(events)).not.toContain("T0KEN")
      }),
    60_000
  )
})
