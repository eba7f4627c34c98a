/**
 * `@kiln/runner-docker/testing`: what tests that need a real Docker engine share — whether one is there
 * (and what to do when it is not), the docker CLI for checks independent of the runner, and a throwaway
 * local registry to push to. Used by this package's tests and by the end-to-end tests of the examples.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import * as DockerClient from "./internal/DockerClient.ts"

export const builderImage = "busybox:latest"

const probe = await Effect.runPromise(Effect.exit(DockerClient.make({}).inspectImage(builderImage)))

/** Why the Docker tests cannot run here, if they cannot. */
export const unavailable: string | undefined = Exit.isFailure(probe)
  ? `no Docker engine: ${String(Cause.squash(probe.cause))}`
  : probe.value._tag === "None"
    ? `the engine has no ${builderImage} image, and the tests pull nothing`
    : undefined

/**
 * A describe block that needs the engine: skipped with a loud reason where there is none, or failed when
 * KILN_REQUIRE_DOCKER=1 (as CI sets it), so a missing engine can never pass unnoticed there.
 */
export const describeDocker = (name: string, body: () => void, missing: string | undefined = unavailable) => {
  if (missing !== undefined && process.env.KILN_REQUIRE_DOCKER === "1") {
    describe(name, () => {
      it("has what it needs (KILN_REQUIRE_DOCKER=1)", () => {
        throw new Error(missing)
      })
    })
    return
  }
  if (missing !== undefined) {
    console.warn(`\n!!! SKIPPED "${name}": ${missing}. Set KILN_REQUIRE_DOCKER=1 to fail instead.\n`)
  }
  describe.skipIf(missing !== undefined)(name, body)
}

/** Runs the docker CLI, for checks independent of the runner. */
export const docker = (...args: ReadonlyArray<string>): string =>
  execFileSync("docker", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim()

export const dockerLines = (...args: ReadonlyArray<string>) =>
  docker(...args)
    .split("\n")
    .filter((line) => line.length > 0)

/** Whether a container or image with this id or name exists. */
export const exists = (kind: "container" | "image", id: string) => {
  try {
    docker(kind, "inspect", id)
    return true
  } catch {
    return false
  }
}

/** Removes every container and image carrying the namespace's label (an image's untagged parents go with it). */
export const removeNamespace = (namespace: string) => {
  const filter = `label=dev.kiln.namespace=${namespace}`
  const containers = dockerLines("ps", "-aq", "--filter", filter)
  if (containers.length > 0) docker("rm", "-f", ...containers)
  for (const image of new Set(dockerLines("images", "-q", "--filter", filter))) {
    if (exists("image", image)) docker("rmi", "-f", image)
  }
}

export const hasRegistryBinary = (() => {
  try {
    execFileSync("docker-registry", ["--version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

/** A port nothing listens on right now. */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject()))
    })
  })

export interface LocalRegistry {
  /** `127.0.0.1:<port>`: the daemon treats loopback registries as insecure, so it pushes over HTTP. */
  readonly host: string
  readonly stop: () => void
}

/** Starts `docker-registry` (Debian's package) on a free loopback port, storing into a temp directory. */
export const startRegistry = async (): Promise<LocalRegistry> => {
  const host = `127.0.0.1:${await freePort()}`
  const dir = mkdtempSync(join(tmpdir(), "kiln-registry-"))
  const config = join(dir, "config.yml")
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, "data")}\nhttp:\n  addr: ${host}\n`
  )
  const registry: ChildProcess = spawn("docker-registry", ["serve", config], { stdio: "ignore" })
  const stop = () => {
    registry.kill()
    rmSync(dir, { recursive: true, force: true })
  }
  for (let tries = 0; tries < 100; tries++) {
    const up = await fetch(`http://${host}/v2/`).then(
      (response) => response.ok,
      () => false
    )
    if (up) return { host, stop }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  stop()
  throw new Error(`the test registry did not start on ${host}`)
}
