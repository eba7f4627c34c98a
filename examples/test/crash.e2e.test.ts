/**
 * A process running the engine is killed with SIGKILL mid-build; a new one starts. The build ends `lost`
 * (it never stays running), the sweep leaves no labelled container behind, every log line stored
 * before the kill is still there, and a last line says that the build was lost and why.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import * as DockerTesting from "@kiln/runner-docker/testing"
import { Effect } from "effect"
import { afterAll } from "vitest"
import { gitVersion, logOf, makeApp, queue, scratch, until } from "./fixtures/stack.ts"

const namespace = `kiln-e2e-crash-${process.pid}`
const where = await scratch("crash")
const children: Array<ChildProcess> = []
afterAll(() => {
  for (const child of children) child.kill("SIGKILL")
  if (DockerTesting.unavailable === undefined) DockerTesting.removeNamespace(namespace)
  return where.close()
})

const leaseMs = 2_000
const labelled = () =>
  DockerTesting.dockerLines("ps", "-aq", "--filter", `label=dev.kiln.namespace=${namespace}`)

/** Starts an engine process on the scratch database; resolves once it says it runs. */
const startEngine = () =>
  Effect.callback<ChildProcess, Error>((resume) => {
    const child = spawn(
      process.execPath,
      [
        "--conditions=@kiln/source",
        join(import.meta.dirname, "fixtures/engine-process.ts"),
        where.dir,
        namespace,
        String(leaseMs)
      ],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    children.push(child)
    child.stdout.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) resume(Effect.succeed(child))
    })
    child.once("exit", (code) => resume(Effect.fail(new Error(`the engine process exited with ${code}`))))
  })

const exited = (child: ChildProcess) =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
  })

DockerTesting.describeDocker("e2e › crash and restart", () => {
  it.live(
    "ends a build lost after its engine is killed, sweeps its container, and keeps its log",
    () =>
      Effect.gen(function* () {
        const app = yield* makeApp({
          strategy: "commands",
          rootDirectory: "commands",
          buildCommand: `echo ${where.nonce}; echo one; echo two; sleep 600`
        })
        const build = yield* queue((yield* gitVersion(where, app)).id)

        const first = yield* startEngine()
        yield* until(build.id, () => false).pipe(
          Effect.raceFirst(
            Effect.gen(function* () {
              while (!(yield* logOf(build.id)).some((l) => l.text === "two")) yield* Effect.sleep("50 millis")
            })
          )
        )
        const before = yield* logOf(build.id)
        expect(labelled()).toHaveLength(1)
        first.kill("SIGKILL")
        yield* exited(first)
        // Nothing stops the container with its process gone: it stays until a sweep.
        expect(labelled()).toHaveLength(1)
        expect((yield* until(build.id, () => true)).phase).toBe("running")

        const killedAt = Date.now()
        const second = yield* startEngine()
        const done = yield* until(build.id, (b) => b.phase === "stopped", "30 seconds")
        expect(done).toMatchObject({ outcome: "lost", status: "failed" })
        expect(done.error).toContain(`crash-test-${first.pid}`)
        console.info(`e2e crash: reaped ${Date.now() - killedAt} ms after the kill (lease ${leaseMs} ms)`)
        while (labelled().length > 0) yield* Effect.sleep("100 millis")
        const after = yield* logOf(build.id)
        expect(after.slice(0, before.length)).toEqual(before)
        // The log says what became of the build, last.
        expect(after.at(-1)).toMatchObject({
          stream: "system",
          text: expect.stringMatching(
            new RegExp(
              `^\\[kiln\\] lost: its process \\(owner crash-test-${first.pid}\\) stopped heartbeating; its lease expired at \\d{4}-`
            )
          )
        })

        second.kill("SIGTERM")
        yield* exited(second)
        expect(second.exitCode === 0 || second.signalCode === "SIGTERM").toBe(true)
      }).pipe(Effect.provide(SqliteStorage.layer({ filename: where.database }))),
    120_000
  )
})
