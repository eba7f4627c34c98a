/**
 * Real builds end to end (issue 4): the engine, SQLite, the source store and the Docker runner together,
 * against the real Docker engine CI starts.
 */
import { expect, it } from "@effect/vitest"
import * as DockerTesting from "@kiln/runner-docker/testing"
import { DateTime, Effect } from "effect"
import { afterAll, beforeAll } from "vitest"
import {
  archiveVersion,
  gitVersion,
  logOf,
  makeApp,
  queue,
  scratch,
  stack,
  stopped,
  withSecret
} from "./fixtures/stack.ts"

const namespace = `kiln-e2e-builds-${process.pid}`
const where = await scratch("builds")
let registry: DockerTesting.LocalRegistry | undefined

beforeAll(async () => {
  if (DockerTesting.unavailable === undefined && DockerTesting.hasRegistryBinary) {
    registry = await DockerTesting.startRegistry()
  }
})
afterAll(() => {
  registry?.stop()
  if (DockerTesting.unavailable === undefined) DockerTesting.removeNamespace(namespace)
  return where.close()
})

const hello = { rootDirectory: "hello-app" } as const
const dockerSteps = [
  "1/6 : FROM busybox",
  "2/6 : WORKDIR /app",
  "3/6 : COPY greeting.txt .",
  '4/6 : RUN echo "building hello-app" && cat greeting.txt',
  '5/6 : RUN ls /app && echo "a second line of output"',
  '6/6 : CMD ["cat", "/app/greeting.txt"]'
]

DockerTesting.describeDocker(
  "e2e › builds",
  () => {
    it.live(
      "builds hello-app from a git commit: completed, image tagged, steps timed, log gapless in Docker's order",
      () =>
        Effect.gen(function* () {
          // Without the cache, so every RUN prints its output.
          const app = yield* makeApp({ ...hello, caching: false })
          const version = yield* gitVersion(where, app)
          const build = yield* queue(version.id)
          const done = yield* stopped(build.id)
          const tag = `${app.handle}:${where.commit.slice(0, 8)}`
          expect(done).toMatchObject({
            status: "completed",
            imageTag: tag,
            commitSha: where.commit,
            error: null
          })
          expect(DockerTesting.exists("image", tag)).toBe(true)
          expect(DockerTesting.docker("run", "--rm", tag)).toBe("Hello from Kiln!")
          expect(done.steps.map((s) => [s.name, s.status])).toEqual(
            dockerSteps.map((name) => [name, "succeeded"])
          )
          for (const step of done.steps) {
            expect(DateTime.toEpochMillis(step.completedAt!)).toBeGreaterThanOrEqual(
              DateTime.toEpochMillis(step.startedAt)
            )
          }
          const lines = yield* logOf(build.id)
          expect(lines.map((l) => l.seq)).toEqual(lines.map((_, i) => i + 1))
          const texts = lines.map((l) => l.text)
          const order = [
            "Step 1/6 : FROM busybox",
            'Step 4/6 : RUN echo "building hello-app" && cat greeting.txt',
            "building hello-app",
            "Hello from Kiln!",
            'Step 5/6 : RUN ls /app && echo "a second line of output"',
            "greeting.txt",
            "a second line of output",
            `Successfully tagged ${tag}`,
            `[kiln] completed: ${tag}`
          ]
          const positions = order.map((text) => texts.indexOf(text))
          expect(positions.every((p) => p >= 0)).toBe(true)
          expect(positions).toEqual([...positions].sort((a, b) => a - b))
          expect(lines.find((l) => l.text === "building hello-app")?.step).toBe(dockerSteps[3])
        }).pipe(Effect.provide(stack(where, { namespace }))),
      120_000
    )

    it.live(
      "builds hello-app from an archive, tagged by the archive's sha256",
      () =>
        Effect.gen(function* () {
          const app = yield* makeApp({})
          const version = yield* archiveVersion(where, app, "hello-app")
          const done = yield* stopped((yield* queue(version.id)).id)
          expect(done).toMatchObject({ status: "completed", commitSha: version.commitSha })
          expect(done.imageTag).toBe(`${app.handle}:${version.commitSha!.slice(0, 8)}`)
          expect(DockerTesting.exists("image", done.imageTag!)).toBe(true)
        }).pipe(Effect.provide(stack(where, { namespace }))),
      120_000
    )

    it.live(
      "fails a broken Dockerfile with Docker's message",
      () =>
        Effect.gen(function* () {
          const app = yield* makeApp({ rootDirectory: "broken" })
          const done = yield* stopped((yield* queue((yield* gitVersion(where, app)).id)).id)
          expect(done).toMatchObject({ status: "failed", outcome: "failure", imageTag: null })
          expect(done.error).toContain("unknown instruction: BOGUS")
        }).pipe(Effect.provide(stack(where, { namespace }))),
      120_000
    )

    it.live(
      "fails a command that exits non-zero with its exit code",
      () =>
        Effect.gen(function* () {
          const app = yield* makeApp({
            strategy: "commands",
            rootDirectory: "commands",
            buildCommand: "cat README.md && exit 3"
          })
          const build = yield* queue((yield* gitVersion(where, app)).id)
          const done = yield* stopped(build.id)
          expect(done).toMatchObject({ status: "failed", error: "build command failed with exit code 3" })
          expect(done.steps).toMatchObject([{ name: "build", status: "failed", exitCode: 3 }])
          expect((yield* logOf(build.id)).map((l) => l.text)).toContain("built by commands")
        }).pipe(Effect.provide(stack(where, { namespace }))),
      120_000
    )
  },
  DockerTesting.unavailable
)

DockerTesting.describeDocker(
  "e2e › push",
  () => {
    it.live(
      "pushes the image to the configured registry",
      () =>
        Effect.gen(function* () {
          const app = yield* makeApp(hello)
          const done = yield* stopped((yield* queue((yield* gitVersion(where, app)).id)).id)
          const short = where.commit.slice(0, 8)
          expect(done).toMatchObject({
            status: "completed",
            imageTag: `${registry!.host}/${app.handle}:${short}`
          })
          expect(done.imageDigest).toMatch(/^sha256:[0-9a-f]{64}$/)
          expect(done.steps.at(-1)).toMatchObject({ name: "push", status: "succeeded" })
          const tags = yield* Effect.promise(() =>
            fetch(`http://${registry!.host}/v2/${app.handle}/tags/list`).then((r) => r.json())
          )
          expect(tags).toEqual({ name: app.handle, tags: [short] })
        }).pipe(Effect.provide(stack(where, { namespace, registry: registry!.host }))),
      120_000
    )
  },
  DockerTesting.unavailable ??
    (DockerTesting.hasRegistryBinary
      ? undefined
      : "no docker-registry binary (Debian package docker-registry)")
)

DockerTesting.describeDocker("e2e › secrets", () => {
  it.live(
    "never stores a secret a command prints, also when it prints it in pieces",
    () =>
      Effect.gen(function* () {
        const app = yield* makeApp({
          strategy: "commands",
          rootDirectory: "commands",
          buildCommand:
            'echo "token=$DEPLOY_TOKEN"; printf "tok-"; sleep 0.3; printf "s3cr3t-e2e\\n"; echo done'
        })
        const build = yield* queue((yield* gitVersion(where, app)).id)
        const done = yield* stopped(build.id)
        expect(done.status).toBe("completed")
        const texts = (yield* logOf(build.id)).map((l) => l.text)
        expect(texts).toContain("token=***")
        expect(texts.filter((t) => t === "***")).toHaveLength(1)
        expect(texts.join("\n")).not.toContain("s3cr3t")
      }).pipe(
        Effect.provide(
          stack(where, { namespace, engine: { environment: withSecret("DEPLOY_TOKEN", "tok-s3cr3t-e2e") } })
        )
      ),
    120_000
  )
})
