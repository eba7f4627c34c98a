/**
 * README's tour of the API, run as it is written: the `sh` blocks after `<!-- tour -->`, in order, in one
 * bash, with `curl` and `jq`, against README's production command serving a data directory of its own.
 * Only the port differs from README's (`8787` would clash with a developer's server). The tour runs in a
 * directory that holds what it reads from the repository (`examples/hello-app`), so whatever it leaves
 * behind shows.
 */
import { spawn } from "node:child_process"
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as DockerTesting from "@kiln/runner-docker/testing"
import { afterAll, describe, expect, it } from "vitest"
import * as DataDir from "../shared/DataDir.ts"
import { killAll, serverCommandArgs, start } from "./fixtures/processes.ts"

const namespace = `kiln-e2e-readme-${process.pid}`
const dir = mkdtempSync(join(tmpdir(), "kiln-e2e-readme-"))
afterAll(() => {
  killAll()
  if (DockerTesting.unavailable === undefined) DockerTesting.removeNamespace(namespace)
  rmSync(dir, { recursive: true, force: true })
})

/** The tour's blocks, joined: each `sh` block right after a `<!-- tour -->` line. */
const tour = () => {
  const lines = readFileSync(join(DataDir.root, "README.md"), "utf8").split("\n")
  const blocks: Array<string> = []
  lines.forEach((line, at) => {
    if (line !== "<!-- tour -->") return
    if (lines[at + 1] !== "```sh")
      throw new Error(`README.md:${at + 2}: a tour marker not followed by an sh block`)
    const end = lines.indexOf("```", at + 2)
    blocks.push(lines.slice(at + 2, end).join("\n"))
  })
  return blocks
}

const bash = (script: string, cwd: string) =>
  new Promise<{ readonly code: number | null; readonly output: string }>((resolve, reject) => {
    const child = spawn("bash", ["-e", "-o", "pipefail", "-c", script], {
      cwd,
      env: { ...process.env, PATH: `${join(process.execPath, "..")}:${process.env.PATH}` },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (chunk) => (output += chunk))
    child.stderr.on("data", (chunk) => (output += chunk))
    child.once("error", reject)
    child.once("close", (code) => resolve({ code, output }))
  })

describe.skipIf(DockerTesting.unavailable !== undefined)("e2e › README's tour of the API", () => {
  it("runs as written: every command answers, the build completes, nothing is left behind", async () => {
    const blocks = tour()
    expect(blocks).toHaveLength(4)
    const port = await DockerTesting.freePort()
    const server = start(
      process.execPath,
      serverCommandArgs(),
      {
        KILN_DATA_DIR: join(dir, ".kiln"),
        KILN_PORT: String(port),
        KILN_DOCKER_NAMESPACE: namespace,
        KILN_PUSH_SECRET: "a push secret for the README tour"
      },
      { detached: true }
    )
    await server.printed(/Kiln is listening on/, 60_000)
    cpSync(join(DataDir.root, "examples/hello-app"), join(dir, "examples/hello-app"), { recursive: true })
    const script = blocks.join("\n").replaceAll("http://127.0.0.1:8787", `http://127.0.0.1:${port}`)
    expect(script).not.toContain("8787")

    const { code, output } = await bash(script, dir)
    expect(code, output).toBe(0)
    // The first build, waited for: completed, with its steps.
    expect(output).toMatch(/"status": "completed",\s+"imageTag": "hello:[0-9a-f]{8}",\s+"steps": \[\s+\{/)
    // Its log as text, then over the WebSocket, which closes at its end (or bash would still wait).
    expect(output.match(/Hello from Kiln!/g)?.length).toBeGreaterThanOrEqual(2)
    expect(output).toMatch(/"status": "cancelled",\s+"cancelReason": "changed my mind"/)
    expect(output).toMatch(/"status":\s*"uploaded"/)
    expect(output).toMatch(
      /"url": "ws:\/\/127\.0\.0\.1:\d+\/api\/v1\/deployments\/[^"]+\/logs\/stream\?ticket=/
    )
    expect(output).toMatch(/"success": true/)
    // The push: answered, not refused (an error body would print as it is).
    expect(output).toMatch(/"redelivered": false/)
    expect(output).not.toMatch(/"error":/)
    // Events: the feed's page, the WebSocket's first three, a webhook with its secret, its ping and a rotation.
    expect(output).toMatch(/"type": "build\.queued",\s+"subject": "bld_/)
    expect(output).toMatch(/"type": "build\.finished"/)
    expect(output).toMatch(/^app_version\.ready\nbuild\.queued\nbuild\.running$/m)
    expect(output).toMatch(/"types": \[\s+"build\.finished"\s+\],\s+"enabled": true,\s+"secret": "whsec_/)
    expect(output).toMatch(/"eventType": "ping",\s+"status": "pending"/)
    expect(output).toMatch(/"secret": "whsec_[^"]+",\s+"previousSecretExpiresAt": "\d{4}-/)
    expect(readdirSync(dir).sort()).toEqual([".kiln", "examples"])

    // The push again, to a workspace that does not exist: the server's refusal shows, message and all.
    const refused = await bash(
      `${script.slice(0, script.indexOf("\n# Workspaces"))}\nWS=wsp_01jd0000000000000000000000\n${blocks[2]}`,
      dir
    )
    expect(refused.code, refused.output).toBe(0)
    expect(JSON.parse(refused.output)).toEqual({ error: "unauthorized", message: expect.any(String) })
    expect(readdirSync(join(dir, "examples"))).toEqual(["hello-app"])
  }, 180_000)
})
