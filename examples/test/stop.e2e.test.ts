/**
 * Stopping the server the way supervisors and containers do: a real SIGTERM or SIGINT to the process the
 * user started — `npm start`, or README's production command — while a build runs in Docker. The server
 * drains as on Ctrl-C (the build gets its 10 s, then is cancelled), every process of the group exits in
 * time, the port is free and no container is left. A server whose npm is gone notices and stops too.
 */
import { readFileSync } from "node:fs"
import { connect, createServer } from "node:net"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, type Build, SourceStore, Storage } from "@kiln/core"
import * as DockerTesting from "@kiln/runner-docker/testing"
import { Effect, Layer } from "effect"
import { afterAll, expect, it } from "vitest"
import * as DataDir from "../shared/DataDir.ts"
import { killAll, processGroup, type Run, serverCommandArgs, start } from "./fixtures/processes.ts"
import { archiveVersion, makeApp, queue, type Scratch, scratch } from "./fixtures/stack.ts"

const namespace = `kiln-e2e-stop-${process.pid}`
const scratches: Array<Scratch> = []
afterAll(async () => {
  killAll()
  for (const where of scratches) {
    if (DockerTesting.unavailable === undefined) DockerTesting.removeNamespace(namespaceOf(where))
    await where.close()
  }
})

const namespaceOf = (where: Scratch) => `${namespace}-${scratches.indexOf(where)}`
const graceMs = 10_000

/** README's production command, with `node` the Node that runs the tests. */
const serverCommand = [process.execPath, ...serverCommandArgs()] as const

const storage = (where: Scratch) =>
  Layer.mergeAll(
    SqliteStorage.layer({ filename: where.database }),
    SourceStore.layer({ directory: where.sources })
  )

/** A data directory with one build queued, which prints its nonce and then sleeps for ten minutes. */
const queued = async () => {
  const where = await scratch("stop")
  scratches.push(where)
  const build = await Effect.gen(function* () {
    const app = yield* makeApp({ strategy: "commands", buildCommand: `echo ${where.nonce}; sleep 600` })
    return yield* queue((yield* archiveVersion(where, app, "commands")).id)
  }).pipe(Effect.provide(storage(where)), Effect.runPromise)
  return { where, build }
}

const labelled = (where: Scratch) =>
  DockerTesting.dockerLines("ps", "-aq", "--filter", `label=dev.kiln.namespace=${namespaceOf(where)}`)

/** Resolves once `check` holds, polling; fails after `timeoutMs`. */
const eventually = async (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((done) => setTimeout(done, 100))
  }
}

/** Starts the server through `command` over `where`, and waits until the build runs in its container. */
const serve = async (
  where: Scratch,
  buildId: Build.Build["id"],
  command: readonly [string, ...Array<string>],
  env: Record<string, string> = {}
) => {
  const port = await DockerTesting.freePort()
  const server = start(
    command[0],
    command.slice(1),
    { KILN_DATA_DIR: where.dir, KILN_PORT: String(port), KILN_DOCKER_NAMESPACE: namespaceOf(where), ...env },
    { detached: true }
  )
  const url = (await server.printed(/Kiln is listening on (\S+)/, 60_000))[1]!
  await server.printed(/npm run demo/)
  const headers = { authorization: `Bearer ${readFileSync(DataDir.at(where.dir).adminToken, "utf8").trim()}` }
  await eventually("the build prints its nonce", async () => {
    const page = (await (await fetch(`${url}/api/builds/${buildId}/logs?limit=100`, { headers })).json()) as {
      readonly data?: ReadonlyArray<{ readonly text: string }>
    }
    return page.data?.some((line) => line.text === where.nonce) ?? false
  })
  expect(labelled(where)).toHaveLength(1)
  // The whole group, as a supervisor sees it: npm, a shell if any, and the server.
  const group = processGroup(server.child.pid!)
  expect(group.length).toBeGreaterThan(0)
  return { server, port, group }
}

/** Sends `signal` to `pid`, then waits until every process of `server`'s group has exited. */
const stop = async (server: Run, pid: number, signal: NodeJS.Signals) => {
  const sentAt = Date.now()
  process.kill(pid, signal)
  await eventually(
    "every process of the group exits",
    () => processGroup(server.child.pid!).length === 0,
    40_000
  )
  return { sentAt, tookMs: Date.now() - sentAt }
}

/** What a graceful stop leaves: the port free, no container, and the build cancelled after its grace. */
const expectDrained = async (
  where: Scratch,
  buildId: Build.Build["id"],
  port: number,
  sentAt: number,
  tookMs: number
) => {
  expect(tookMs).toBeGreaterThanOrEqual(graceMs)
  expect(tookMs).toBeLessThan(graceMs + 20_000)
  await new Promise<void>((done, fail) => {
    const probe = createServer().once("error", fail)
    probe.listen(port, "127.0.0.1", () => probe.close(() => done()))
  })
  expect(labelled(where)).toEqual([])
  const { build, log } = await Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const build = yield* storage.getBuild(Access.all, buildId)
    const log = yield* storage.readLogs(Access.all, build.id, 0, 1_000)
    return { build, log: log.lines }
  }).pipe(Effect.provide(storage(where)), Effect.runPromise)
  expect(build).toMatchObject({ phase: "stopped", outcome: "cancelled", cancelReason: "shutdown" })
  expect(build.completedAt!.epochMilliseconds - sentAt).toBeGreaterThanOrEqual(graceMs)
  expect(log.at(-1)).toMatchObject({ stream: "system", text: "[kiln] cancelled: shutdown" })
}

DockerTesting.describeDocker("e2e › stopping the server with a signal", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it.concurrent(`npm start: ${signal} to npm's process drains the server, and both exit`, async () => {
      const { where, build } = await queued()
      const { server, port } = await serve(where, build.id, ["npm", "start"])
      const { sentAt, tookMs } = await stop(server, server.child.pid!, signal)
      // npm exits as the server did: interrupted.
      expect(await server.exited).toEqual({ code: 130, signal: null })
      expect(server.output()).toContain("Stopping: running builds get 10 s to finish.")
      await expectDrained(where, build.id, port, sentAt, tookMs)
    }, 120_000)

    it.concurrent(`README's production command: ${signal} drains the server, and it exits`, async () => {
      const { where, build } = await queued()
      const { server, port, group } = await serve(where, build.id, serverCommand)
      expect(group.map(({ pid }) => pid)).toEqual([server.child.pid])
      const { sentAt, tookMs } = await stop(server, server.child.pid!, signal)
      expect(await server.exited).toEqual({ code: 130, signal: null })
      await expectDrained(where, build.id, port, sentAt, tookMs)
    }, 120_000)
  }

  it.concurrent("npm start: Ctrl-C at a terminal (SIGINT to the whole group) drains the server", async () => {
    const { where, build } = await queued()
    const { server, port } = await serve(where, build.id, ["npm", "start"])
    // The server gets the signal twice: from the terminal, and passed on by npm.
    const { sentAt, tookMs } = await stop(server, -server.child.pid!, "SIGINT")
    expect(await server.exited).toEqual({ code: 130, signal: null })
    await expectDrained(where, build.id, port, sentAt, tookMs)
  }, 120_000)

  it.concurrent("npm run mount: a second SIGINT while it closes does not cut the close short", async () => {
    const where = await scratch("stop")
    scratches.push(where)
    const port = await DockerTesting.freePort()
    const mount = start(
      "npm",
      ["run", "mount"],
      { KILN_DATA_DIR: where.dir, PORT: String(port), KILN_DOCKER_NAMESPACE: namespaceOf(where) },
      { detached: true }
    )
    // README: the mount example listens on PORT.
    await mount.printed(new RegExp(`The host listens on http://127\\.0\\.0\\.1:${port},`), 60_000)
    // A request whose headers never end holds the host server's close open.
    const client = connect(port, "127.0.0.1")
    await new Promise((done) => client.once("connect", done))
    client.write("GET /health HTTP/1.1\r\nhost: test\r\n")
    await new Promise((done) => setTimeout(done, 200))
    // Ctrl-C at a terminal, then again (or npm passing the first on late).
    process.kill(-mount.child.pid!, "SIGINT")
    await mount.printed(/Stopping…/)
    await new Promise((done) => setTimeout(done, 500))
    process.kill(mount.child.pid!, "SIGINT")
    await new Promise((done) => setTimeout(done, 500))
    expect(processGroup(mount.child.pid!)).toHaveLength(2)
    client.destroy()
    expect(await mount.exited).toEqual({ code: 0, signal: null })
    expect(mount.output().match(/Stopping…/g)).toHaveLength(1)
    await eventually("every process of the group exits", () => processGroup(mount.child.pid!).length === 0)
  }, 120_000)

  it.concurrent("a server run by npm through a shell that does not exec stops when that shell is killed", async () => {
    const { where, build } = await queued()
    // What npm runs for a script that does not `exec`: the shell stays the server's parent, and a signal
    // npm passes on kills the shell only.
    const { server, port, group } = await serve(
      where,
      build.id,
      ["sh", "-c", `${serverCommand.join(" ")}; true`],
      {
        npm_lifecycle_event: "start"
      }
    )
    expect(group).toHaveLength(2)
    const { sentAt, tookMs } = await stop(server, server.child.pid!, "SIGTERM")
    expect(await server.exited).toEqual({ code: null, signal: "SIGTERM" })
    expect(server.output()).toContain(`npm (process ${server.child.pid}) is gone: stopping as on SIGTERM.`)
    await expectDrained(where, build.id, port, sentAt, tookMs)
  }, 120_000)
})
