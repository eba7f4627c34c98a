import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { afterAll, beforeAll } from "vitest"
import { DockerRunner } from "../src/index.ts"
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

const hasRegistry = (() => {
  try {
    execFileSync("docker-registry", ["--version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

/** A port nothing listens on right now. */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject()))
    })
  })

let registry: ChildProcess | undefined
let dir: string | undefined
let host = ""
let closedHost = ""

beforeAll(async () => {
  if (unavailable !== undefined || !hasRegistry) return
  host = `127.0.0.1:${await freePort()}`
  closedHost = `127.0.0.1:${await freePort()}`
  dir = mkdtempSync(join(tmpdir(), "kiln-registry-"))
  const config = join(dir, "config.yml")
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, "data")}\nhttp:\n  addr: ${host}\n`
  )
  registry = spawn("docker-registry", ["serve", config], { stdio: "ignore" })
  for (let tries = 0; tries < 100; tries++) {
    const up = await fetch(`http://${host}/v2/`).then(
      (response) => response.ok,
      () => false
    )
    if (up) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`the test registry did not start on ${host}`)
})

afterAll(() => {
  registry?.kill()
  if (unavailable === undefined) removeNamespace(namespace)
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
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
    (hasRegistry
      ? undefined
      : "no docker-registry binary to serve a test registry (Debian package docker-registry)")
)
