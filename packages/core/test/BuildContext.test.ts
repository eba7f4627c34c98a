import { execFileSync } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { BuildContext } from "@kiln/core/adapter"
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

describe("BuildContext.replaceFile", () => {
  const dockerfile = new TextEncoder().encode('FROM busybox\nCMD ["true"]\n')

  it.effect("replaces the file, or adds it when the context has none, keeping every other file", () =>
    Effect.gen(function* () {
      const files = { Dockerfile: "FROM scratch\n", "src/app.txt": "y".repeat(1500) }
      const replaced = yield* bytesOf(
        BuildContext.replaceFile(RunnerConformance.contextOf(files), "Dockerfile", dockerfile)
      )
      expect(extracted(replaced)).toEqual({
        Dockerfile: 'FROM busybox\nCMD ["true"]\n',
        "src/app.txt": files["src/app.txt"]
      })
      const added = yield* bytesOf(
        BuildContext.replaceFile(
          RunnerConformance.contextOf({ "a.txt": "a" }),
          "docker/Dockerfile",
          dockerfile
        )
      )
      expect(extracted(added)).toEqual({ "a.txt": "a", "docker/Dockerfile": 'FROM busybox\nCMD ["true"]\n' })
    })
  )

  it.effect("drops the root directory entry that `tar -C dir .` writes, which has no path of its own", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "kiln-context-"))
      writeFileSync(join(dir, "a.txt"), "a\n")
      const tar = execFileSync("tar", ["-c", "-C", dir, "."])
      const out = yield* bytesOf(
        BuildContext.replaceFile(Stream.make(new Uint8Array(tar)), "Dockerfile", dockerfile)
      )
      expect(extracted(out)).toEqual({ "a.txt": "a\n", Dockerfile: 'FROM busybox\nCMD ["true"]\n' })
      expect(execFileSync("tar", ["-tf", "-"], { input: out, encoding: "utf8" }).split("\n")).not.toContain(
        "/"
      )
    })
  )

  it.effect("gives the same result however the stream is cut into chunks", () =>
    Effect.gen(function* () {
      const files = { Dockerfile: "FROM scratch\n", "b/c.txt": "z".repeat(3000) }
      const whole = yield* bytesOf(
        BuildContext.replaceFile(RunnerConformance.contextOf(files), "Dockerfile", dockerfile)
      )
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 8 }),
            (sizes) =>
              Effect.runPromise(
                Effect.gen(function* () {
                  const cut = yield* bytesOf(
                    BuildContext.replaceFile(yield* chunked(files, sizes), "Dockerfile", dockerfile)
                  )
                  expect(Buffer.compare(cut, whole)).toBe(0)
                })
              )
          ),
          { numRuns: 40 }
        )
      )
    })
  )
})
