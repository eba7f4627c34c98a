import { expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { afterAll, beforeAll } from "vitest"
import { DockerRunner } from "../src/index.ts"
import { freePort, hasRegistryBinary, type LocalRegistry, startRegistry } from "../src/testing.ts"
import {
  describeDocker,
  docker,
  dockerfileSpec,
  errorOf,
  exists,
  logLines,
  namespaceOf,
  removeNamespace,
  runToEnd,
  stepNames,
  tagOf,
  unavailable
} from "./fixtures.ts"

const namespace = namespaceOf("registry")

let registry: LocalRegistry | undefined
let host = ""
let closedHost = ""

beforeAll(async () => {
  if (unavailable !== undefined || !hasRegistryBinary) return
  registry = await startRegistry()
  host = registry.host
  closedHost = `127.0.0.1:${await freePort()}`
})

afterAll(() => {
  registry?.stop()
  if (unavailable === undefined) removeNamespace(namespace)
})

describeDocker(
  "docker › push to a registry",
  () => {
    it.live(
      "tags the image for the registry, pushes it in a final step with condensed progress, and answers its digest",
      () =>
        Effect.gen(function* () {
          const spec = dockerfileSpec({
            Dockerfile: "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n"
          })
          const { events, exit } = yield* runToEnd(spec).pipe(
            Effect.provide(DockerRunner.layer({ namespace, registry: { host } }))
          )
          expect(Exit.isSuccess(exit)).toBe(true)
          const tag = tagOf(spec, host)
          const artifact = events.at(-1)
          expect(artifact).toMatchObject({ _tag: "Artifact", imageTag: tag })
          const digest = artifact?._tag === "Artifact" ? artifact.imageDigest : null
          expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/)

          expect(stepNames(events)).toEqual([
            "1/3 : FROM busybox",
            "2/3 : RUN echo one > /one",
            "3/3 : RUN echo two > /two",
            "push"
          ])
          expect(events).toContainEqual({ _tag: "StepStarted", index: 3, name: "push" })
          expect(events).toContainEqual({
            _tag: "StepFinished",
            index: 3,
            name: "push",
            status: "succeeded",
            exitCode: null
          })
          // busybox's layer and one for each RUN: one line each, plus the repository and the digest.
          const push = logLines(events, "push")
          const short = spec.version.commitSha!.slice(0, 8)
          expect(push[0]).toBe(`The push refers to repository [${host}/${spec.app.handle}]`)
          expect(push.filter((line) => /^[0-9a-f]{12}: Pushed$/.test(line))).toHaveLength(3)
          expect(push.at(-1)).toMatch(new RegExp(`^${short}: digest: ${digest} size: \\d+$`))
          expect(push).toHaveLength(5)

          const tags = yield* Effect.promise(() =>
            fetch(`http://${host}/v2/${spec.app.handle}/tags/list`).then((r) => r.json())
          )
          expect(tags).toEqual({ name: spec.app.handle, tags: [short] })
          const manifest = yield* Effect.promise(() =>
            fetch(`http://${host}/v2/${spec.app.handle}/manifests/${short}`, {
              method: "HEAD",
              headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json" }
            })
          )
          expect(manifest.headers.get("docker-content-digest")).toBe(digest)
          expect(exists("image", tag)).toBe(true)
        }),
      90_000
    )

    it.live(
      "a push the registry cannot take fails the push step and the build with BuildFailed",
      () =>
        Effect.gen(function* () {
          const spec = dockerfileSpec({ Dockerfile: "FROM busybox\nRUN echo one > /one\n" })
          const { events, exit } = yield* runToEnd(spec).pipe(
            Effect.provide(DockerRunner.layer({ namespace, registry: { host: closedHost } }))
          )
          const error = errorOf(exit)
          expect(error?.reason).toBe("BuildFailed")
          expect(error?.message).toContain("connection refused")
          expect(events).toContainEqual({
            _tag: "StepFinished",
            index: 2,
            name: "push",
            status: "failed",
            exitCode: null
          })
          expect(events.some((e) => e._tag === "Artifact")).toBe(false)
          // The image was built; it stays for a retry, found by its labels like any other.
          expect(docker("images", "-q", tagOf(spec, closedHost))).not.toBe("")
        }),
      90_000
    )
  },
  unavailable ??
    (hasRegistryBinary
      ? undefined
      : "no docker-registry binary to serve a test registry (Debian package docker-registry)")
)
