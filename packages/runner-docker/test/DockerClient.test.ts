import { RunnerError } from "@kiln/core"
import { describe, expect, it } from "vitest"
import { makeDemultiplexer } from "../src/internal/demultiplexer.ts"
import { classifyError } from "../src/internal/dockerErrors.ts"

// Shaped like what docker-modem rejects with: an Error whose message quotes the status, and the engine's
// JSON body when it was not a stream.
const httpError = (statusCode: number, message: string, reason = "unexpected") =>
  Object.assign(new Error(`(HTTP code ${statusCode}) ${reason} - ${message} `), {
    statusCode,
    reason,
    json: { message }
  })
// A streaming call (build, push) has no parsed body: only the message carries the engine's words.
const streamError = (statusCode: number, message: string) =>
  Object.assign(new Error(`(HTTP code ${statusCode}) unexpected - ${message} `), { statusCode, json: null })
const socketError = (code: string, message: string) => Object.assign(new Error(message), { code })

describe("classifyError", () => {
  it.each([
    ["ENOENT", "connect ENOENT /var/run/docker.sock"],
    ["ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:2375"],
    ["EACCES", "connect EACCES /var/run/docker.sock"],
    ["ECONNRESET", "socket hang up"],
    ["EPIPE", "write EPIPE"],
    ["ETIMEDOUT", "connect ETIMEDOUT 10.0.0.1:2376"],
    ["ENOTFOUND", "getaddrinfo ENOTFOUND docker.internal"]
  ])("an unreachable engine (%s) is Unavailable, whatever the operation", (code, message) => {
    for (const operation of ["create container", "build image", "list containers"] as const) {
      const error = classifyError(operation, socketError(code, message))
      expect(error.reason).toBe("Unavailable")
      expect(error.retryable).toBe(true)
      expect(error.message).toBe(`the Docker engine cannot be reached: ${message}`)
    }
  })

  it("an engine answering 502-504 is Unavailable", () => {
    expect(classifyError("start container", httpError(503, "daemon is shutting down")).reason).toBe(
      "Unavailable"
    )
  })

  it("304 and 404 on stop, and 404 on remove, mean the work is already done", () => {
    expect(classifyError("stop container", httpError(304, "container already stopped"))).toBe("settled")
    expect(classifyError("stop container", httpError(404, "No such container: abc"))).toBe("settled")
    expect(classifyError("remove container", httpError(404, "No such container: abc"))).toBe("settled")
    expect(
      classifyError("remove container", httpError(409, "removal of container abc is already in progress"))
    ).toBe("settled")
    expect(classifyError("remove image", httpError(404, "No such image: sha256:abc"))).toBe("settled")
    expect(classifyError("inspect container", httpError(404, "No such container: abc"))).toBe("settled")
    expect(classifyError("inspect image", httpError(404, "No such image: busybox:1"))).toBe("settled")
  })

  it("other refusals of a settling operation are still errors", () => {
    const conflict = classifyError(
      "remove image",
      httpError(409, "image is being used by running container abc")
    )
    expect(conflict).toMatchObject({ reason: "Internal" })
    expect(
      classifyError("stop container", httpError(500, "cannot stop container: permission denied"))
    ).toMatchObject({
      reason: "Internal",
      message: "Docker could not stop container: cannot stop container: permission denied"
    })
  })

  it("404 where something must exist is an error, not success", () => {
    const error = classifyError("create exec", httpError(404, "No such container: abc"))
    expect(error).toMatchObject({
      reason: "Internal",
      message: "Docker could not create exec: No such container: abc"
    })
  })

  it("a build, push or pull the engine refuses is BuildFailed, with the engine's own words", () => {
    const parse = classifyError(
      "build image",
      streamError(400, "dockerfile parse error line 2: unknown instruction: FOO")
    )
    expect(parse).toMatchObject({
      reason: "BuildFailed",
      message: "dockerfile parse error line 2: unknown instruction: FOO"
    })
    expect(
      classifyError("build image", streamError(500, "Cannot locate specified Dockerfile: Dockerfile.web"))
    ).toMatchObject({ reason: "BuildFailed", message: "Cannot locate specified Dockerfile: Dockerfile.web" })
    expect(classifyError("pull image", httpError(404, "pull access denied for nope"))).toMatchObject({
      reason: "BuildFailed"
    })
    expect(
      classifyError("push image", httpError(500, "denied: requested access to the resource is denied"))
    ).toMatchObject({
      reason: "BuildFailed",
      message: "denied: requested access to the resource is denied"
    })
  })

  it("anything else is Internal, keeping the cause", () => {
    const cause = new TypeError("Cannot read properties of undefined")
    const error = classifyError("inspect exec", cause)
    expect(error).toMatchObject({
      reason: "Internal",
      message: "Docker could not inspect exec: Cannot read properties of undefined"
    })
    expect(error.cause).toBe(cause)
    expect(classifyError("connect", "a string").message).toBe("Docker could not connect: a string")
    expect(classifyError("connect", null).reason).toBe("Internal")
  })

  it("passes a RunnerError raised on purpose through unchanged", () => {
    const raised = new RunnerError.RunnerError({ reason: "BuildFailed", message: "no" })
    expect(classifyError("build image", raised)).toBe(raised)
  })
})

const frame = (stream: number, text: string) => {
  const data = new TextEncoder().encode(text)
  const header = new Uint8Array(8)
  header[0] = stream
  new DataView(header.buffer).setUint32(4, data.length)
  return Uint8Array.from([...header, ...data])
}

const decode = (outputs: ReadonlyArray<{ stream: string; data: Uint8Array }>) =>
  outputs.map((o) => `${o.stream}:${new TextDecoder().decode(o.data)}`)

describe("makeDemultiplexer", () => {
  it("splits frames into stdout and stderr, in order", () => {
    const demultiplex = makeDemultiplexer()
    const bytes = Uint8Array.from([...frame(1, "out 1\n"), ...frame(2, "err\n"), ...frame(1, "out 2\n")])
    expect(decode(demultiplex(bytes))).toEqual(["stdout:out 1\n", "stderr:err\n", "stdout:out 2\n"])
  })

  it("reassembles frames (and headers) split across chunks anywhere", () => {
    const bytes = Uint8Array.from([...frame(2, "hello "), ...frame(1, "world\n"), ...frame(1, "")])
    for (let cut = 0; cut <= bytes.length; cut++) {
      for (let cut2 = cut; cut2 <= bytes.length; cut2 += 3) {
        const demultiplex = makeDemultiplexer()
        const outputs = [
          ...demultiplex(bytes.slice(0, cut)),
          ...demultiplex(bytes.slice(cut, cut2)),
          ...demultiplex(bytes.slice(cut2))
        ]
        expect(decode(outputs)).toEqual(["stderr:hello ", "stdout:world\n"])
      }
    }
  })
})
