/**
 * The app the examples build, `examples/hello-app`: how it is registered, and its source as a .tar.gz of
 * this repository's copy (so it builds from a fresh clone, uncommitted edits included).
 */
import { spawn } from "node:child_process"
import { Stream } from "effect"
import { root } from "./DataDir.ts"

export const handle = "hello-app"
export const name = "Hello app"
/** Archives and commits both hold the app at this path. */
export const build = { rootDirectory: "examples/hello-app", timeoutMs: 10 * 60 * 1000 } as const

/** `examples/hello-app` as a gzipped tar, streamed as `tar` writes it. */
export const archive = (): Stream.Stream<Uint8Array, Error> =>
  Stream.suspend(() => {
    const tar = spawn("tar", ["-czf", "-", "-C", root, build.rootDirectory], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    return Stream.fromAsyncIterable(
      tar.stdout as AsyncIterable<Uint8Array>,
      (cause) => new Error(String(cause))
    )
  })
