import { describe, expect, it } from "vitest"
import { condense, failureOf } from "../src/internal/progress.ts"

describe("condense", () => {
  it("keeps one line per layer, when it is done, and every message about no layer", () => {
    const push = [
      { status: "The push refers to repository [127.0.0.1:5000/web]" },
      { status: "Preparing", id: "58a693eaf847" },
      { status: "Preparing", id: "0d3e7f1b2c44" },
      { status: "Waiting", id: "0d3e7f1b2c44" },
      { status: "Pushing", id: "58a693eaf847", progress: "[>   ]  34.82kB/1.982MB" },
      { status: "Pushing", id: "58a693eaf847", progress: "[====>]  1.997MB" },
      { status: "Pushed", id: "58a693eaf847" },
      { status: "Layer already exists", id: "0d3e7f1b2c44" },
      { status: "Retrying in 5 seconds", id: "0d3e7f1b2c44" },
      { status: "abc12345: digest: sha256:b7d2 size: 528" },
      { aux: { Digest: "sha256:b7d2" } }
    ]
    expect(push.flatMap((m) => condense(m) ?? [])).toEqual([
      "The push refers to repository [127.0.0.1:5000/web]",
      "58a693eaf847: Pushed",
      "0d3e7f1b2c44: Layer already exists",
      "abc12345: digest: sha256:b7d2 size: 528"
    ])
    const pull = [
      { status: "Pulling from library/node", id: "22" },
      { status: "Pulling fs layer", id: "a1" },
      { status: "Downloading", id: "a1" },
      { status: "Verifying Checksum", id: "a1" },
      { status: "Download complete", id: "a1" },
      { status: "Extracting", id: "a1" },
      { status: "Pull complete", id: "a1" },
      { status: "Digest: sha256:ff" },
      { status: "Status: Downloaded newer image for node:22" }
    ]
    expect(pull.flatMap((m) => condense(m) ?? [])).toEqual([
      "22: Pulling from library/node",
      "a1: Pull complete",
      "Digest: sha256:ff",
      "Status: Downloaded newer image for node:22"
    ])
  })
})

describe("failureOf", () => {
  it("reads the engine's error, with its code when there is one", () => {
    expect(
      failureOf({ errorDetail: { code: 3, message: "returned a non-zero code: 3" }, error: "x" })
    ).toEqual({
      message: "returned a non-zero code: 3",
      code: 3
    })
    expect(failureOf({ error: "connection refused" })).toEqual({ message: "connection refused" })
    expect(failureOf({ stream: "Step 1/2 : FROM busybox" })).toBeUndefined()
  })
})
