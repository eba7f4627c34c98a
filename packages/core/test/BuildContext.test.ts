import { execFileSync } from "node:child_process"
import { describe, expect, it } from "@effect/vitest"
import { BuildContext } from "@kiln/core"
import { RunnerConformance } from "@kiln/core/testing"
import { Effect, Stream } from "effect"
import fc from "fast-check"

const bytesOf = (stream: Stream.Stream<Uint8Array, unknown>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => Buffer.concat(chunks.map((c) => Buffer.from(c))))

/** What GNU tar reads from the bytes: each file with its contents. */
const extracted = (tar: Buffer) => {
  const names = execFileSync("tar", ["--quoting-style=literal", "-tf", "-"], { input: tar, encoding: "utf8" })
    .split("\n")
    .filter((name) => name.length > 0 && !name.endsWith("/"))
  return Object.fromEntries(
    names.map((name) => [name, execFileSync("tar", ["-xOf", "-", name], { input: tar, encoding: "utf8" })])
  )
}

/** A context split into chunks of random sizes, as a network or a pipe would deliver it. */
const chunked = (files: Record<string, string>, sizes: ReadonlyArray<number>) =>
  Effect.map(bytesOf(RunnerConformance.contextOf(files)), (whole) => {
    const chunks: Array<Uint8Array> = []
    let at = 0
    for (let i = 0; at < whole.length; i++) {
      const size = sizes[i % sizes.length]!
      chunks.push(whole.subarray(at, at + size))
      at += size
    }
    return Stream.fromIterable(chunks)
  })

describe("BuildContext.appendToFile", () => {
  it.effect("appends a line to one file and leaves the others as they were", () =>
    Effect.gen(function* () {
      const files = {
        Dockerfile: "FROM busybox\nRUN echo hi",
        "src/app.txt": "x".repeat(700),
        "README.md": "read me\n"
      }
      const out = yield* bytesOf(
        BuildContext.appendToFile(RunnerConformance.contextOf(files), "Dockerfile", 'LABEL "a"="b"')
      )
      expect(extracted(out)).toEqual({ ...files, Dockerfile: 'FROM busybox\nRUN echo hi\nLABEL "a"="b"\n' })
    })
  )

  it.effect("passes a context without the file through unchanged in content", () =>
    Effect.gen(function* () {
      const files = { "app/Dockerfile": "FROM busybox\n" }
      const out = yield* bytesOf(
        BuildContext.appendToFile(RunnerConformance.contextOf(files), "Dockerfile", "LABEL x=y")
      )
      expect(extracted(out)).toEqual(files)
    })
  )

  it.effect("works however the stream is cut into chunks", () =>
    Effect.gen(function* () {
      const files = { "docker/Dockerfile": "FROM busybox\n".repeat(50), "data.bin": "0123456789".repeat(300) }
      const cases = fc.sample(fc.array(fc.integer({ min: 1, max: 1500 }), { minLength: 1, maxLength: 8 }), {
        numRuns: 50,
        seed: 5
      })
      for (const sizes of cases) {
        const out = yield* bytesOf(
          BuildContext.appendToFile(yield* chunked(files, sizes), "./docker/Dockerfile", "LABEL k=v")
        )
        expect(extracted(out)).toEqual({
          ...files,
          "docker/Dockerfile": `${files["docker/Dockerfile"]}\nLABEL k=v\n`
        })
      }
    })
  )

  it.effect("refuses bytes that are not a tar", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Stream.runDrain(
          BuildContext.appendToFile(Stream.make(new TextEncoder().encode("nope")), "Dockerfile", "x")
        )
      )
      expect(error).toMatchObject({ _tag: "SourceError", reason: "InvalidArchive" })
    })
  )
})
