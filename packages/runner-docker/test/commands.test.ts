import { expect, it } from "@effect/vitest"
import { RunnerConformance } from "@kiln/core/testing"
import { Effect, Exit } from "effect"
import { afterAll } from "vitest"
import { DockerRunner } from "../src/index.ts"
import {
  commandsSpec,
  describeDocker,
  docker,
  dockerLines,
  errorOf,
  logLines,
  namespaceOf,
  removeNamespace,
  runInBackground,
  runToEnd,
  unavailable
} from "./fixtures.ts"

const namespace = namespaceOf("commands")
const maxLogBytes = 1024 * 1024
const runner = DockerRunner.layer({ namespace, stopGraceMs: 2_000, maxLogBytes })

afterAll(() => {
  if (unavailable === undefined) removeNamespace(namespace)
})

interface Inspected {
  readonly Config: { readonly Labels: Record<string, string>; readonly WorkingDir: string }
  readonly HostConfig: {
    readonly Init: boolean
    readonly Memory: number
    readonly NanoCpus: number
    readonly PidsLimit: number
    readonly Privileged: boolean
    readonly AutoRemove: boolean
    readonly Binds: ReadonlyArray<string> | null
    readonly Mounts?: ReadonlyArray<unknown> | null
    readonly LogConfig: { readonly Type: string; readonly Config: Record<string, string> }
  }
  readonly Mounts: ReadonlyArray<unknown>
}

describeDocker("docker › commands builds", () => {
  it.live(
    "runs in a container with an init, the app's limits, a capped log, no host mounts, and Kiln's labels",
    () =>
      Effect.gen(function* () {
        const spec = commandsSpec(
          "echo started; sleep 600",
          {},
          { limits: { memoryBytes: 64 * 1024 * 1024, cpus: 0.5, pids: 64 } }
        )
        const run = yield* runInBackground(spec)
        yield* run.waitFor("started")
        const [id] = dockerLines("ps", "-q", "--filter", `label=dev.kiln.build-id=${spec.buildId}`)
        const raw = docker("container", "inspect", id!)
        const [container] = JSON.parse(raw) as ReadonlyArray<Inspected>
        expect(container!.HostConfig).toMatchObject({
          Init: true,
          Memory: 64 * 1024 * 1024,
          NanoCpus: 500_000_000,
          PidsLimit: 64,
          Privileged: false,
          AutoRemove: false,
          LogConfig: { Type: "json-file", Config: { "max-size": String(maxLogBytes), "max-file": "1" } }
        })
        expect(container!.HostConfig.Binds ?? []).toEqual([])
        expect(container!.HostConfig.Mounts ?? []).toEqual([])
        expect(container!.Mounts).toEqual([])
        expect(raw).not.toContain("docker.sock")
        expect(container!.Config.WorkingDir).toBe("/workspace")
        expect(container!.Config.Labels).toMatchObject({
          "dev.kiln.managed": "true",
          "dev.kiln.namespace": namespace,
          "dev.kiln.build-id": spec.buildId,
          "dev.kiln.attempt": "1",
          "dev.kiln.owner": spec.owner
        })
        yield* run.interrupt
      }).pipe(Effect.provide(runner)),
    60_000
  )

  it.live(
    "runs the commands in /workspace with the source and the environment",
    () =>
      Effect.gen(function* () {
        const { events, exit } = yield* runToEnd(
          commandsSpec("pwd; cat README.md; cat src/app.txt; echo region=$REGION", {
            context: RunnerConformance.contextOf({
              "README.md": "hello from the source\n",
              "src/app.txt": "app\n"
            }),
            environment: [{ name: "REGION", value: "eu-west", secret: false }]
          })
        )
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(logLines(events, "build")).toEqual([
          "/workspace",
          "hello from the source",
          "app",
          "region=eu-west"
        ])
      }).pipe(Effect.provide(runner)),
    60_000
  )

  it.live(
    "the deploy command sees what the build command left in the workspace",
    () =>
      Effect.gen(function* () {
        const { events, exit } = yield* runToEnd(
          commandsSpec("echo built > out.txt", { deploy: "cat out.txt" })
        )
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(logLines(events, "deploy")).toEqual(["built"])
      }).pipe(Effect.provide(runner)),
    60_000
  )

  it.live(
    "masks a secret however it is split across writes, streams and lines",
    () =>
      Effect.gen(function* () {
        const secret = "s3cr3t-T0KEN-value"
        const { events, exit } = yield* runToEnd(
          commandsSpec(
            [
              "printf 's3c'; sleep 0.2; printf 'r3t-T'; sleep 0.2; printf '0KEN-va'; sleep 0.2; printf 'lue\\n'",
              'printf \'a=%s b=%s\\n\' "$API_TOKEN" "$API_TOKEN"',
              "printf '%s' \"$API_TOKEN\" >&2; sleep 0.2; echo ' on stderr' >&2",
              'echo -n "$API_TOKEN"'
            ].join("; "),
            { environment: [{ name: "API_TOKEN", value: secret, secret: true }] }
          )
        )
        expect(Exit.isSuccess(exit)).toBe(true)
        const stream = (name: string) =>
          events.flatMap((e) => (e._tag === "Log" && e.stream === name ? [e.text] : []))
        expect(stream("stdout")).toEqual(["***", "a=*** b=***", "***"])
        expect(stream("stderr")).toEqual(["*** on stderr"])
        expect(JSON.stringify(events)).not.toContain("T0KEN")
      }).pipe(Effect.provide(runner)),
    60_000
  )

  it.live(
    "a builder image that is not there and cannot be pulled fails with BuildFailed, leaving nothing",
    () =>
      Effect.gen(function* () {
        const spec = commandsSpec("echo never", {}, { builderImage: "kiln-test-missing-builder:1" })
        const { events, exit } = yield* runToEnd(spec)
        const error = errorOf(exit)
        expect(error?.reason).toBe("BuildFailed")
        expect(error?.message).toMatch(/^builder image kiln-test-missing-builder:1 is not available: /)
        expect(events.some((e) => e._tag === "StepStarted")).toBe(false)
        expect(docker("ps", "-aq", "--filter", `label=dev.kiln.build-id=${spec.buildId}`)).toBe("")
      }).pipe(Effect.provide(runner)),
    60_000
  )

  it.live(
    "a command the shell cannot find fails its step with exit code 127",
    () =>
      Effect.gen(function* () {
        const { events, exit } = yield* runToEnd(commandsSpec("no-such-tool --version"))
        expect(errorOf(exit)).toMatchObject({
          reason: "BuildFailed",
          message: "build command failed with exit code 127",
          exitCode: 127
        })
        expect(logLines(events, "build").join("\n")).toContain("no-such-tool")
      }).pipe(Effect.provide(runner)),
    60_000
  )
})
