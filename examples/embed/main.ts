/**
 * Embedding Kiln: `@kiln/core` with the SQLite adapter, no server. It queues a build of a git commit and
 * takes it through its lifecycle the way an engine does — claim, steps, log lines, the final fenced
 * write — then reads back its log, its steps and the latest builds.
 *
 * Run with `npm start`; the database lives in `.kiln/kiln.db` (or `KILN_DB`).
 */
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { SqliteStorage } from "@kiln/adapter-sqlite"
import { Access, App, type BuildState, type LogLine, Query, Storage } from "@kiln/core"
import { Clock, Console, DateTime, Effect } from "effect"

const filename = process.env.KILN_DB ?? ".kiln/kiln.db"
const now = Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))

/** The workspace and app this example builds, created on the first run and reused after. */
const ensureApp = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  const [existing] = (yield* storage.listApps(Access.all, Query.first(1))).rows
  if (existing !== undefined) return existing
  const workspace = yield* storage.createWorkspace({ name: "Demo" })
  return yield* storage.createApp(Access.all, {
    workspaceId: workspace.id,
    handle: "hello",
    name: "Hello",
    kind: "app",
    build: App.defaultBuildSettings
  })
})

const program = Effect.gen(function* () {
  const storage = yield* Storage.Storage
  const app = yield* ensureApp
  const version = yield* storage.createAppVersion(Access.all, {
    appId: app.id,
    source: {
      type: "git",
      url: "https://git.example.com/demo/hello.git",
      commitSha: "c0ffee".padEnd(40, "0")
    }
  })
  const queued = yield* storage.createBuild(Access.all, {
    appVersionId: version.id,
    trigger: "manual",
    createdBy: "examples/embed"
  })
  yield* Console.log(`queued   ${queued.id} (#${queued.sequenceNumber} of ${app.handle})`)

  const [build] = yield* storage.claimNext({ owner: `embed-${process.pid}`, leaseMs: 30_000, max: 1 })
  if (build === undefined) return yield* Effect.die("the build just queued was not claimable")
  const fence: BuildState.Fence = { owner: build.owner!, attempt: build.attempt }
  yield* Console.log(`claimed  by ${fence.owner}, attempt ${fence.attempt}`)
  yield* storage.transition(build.id, { _tag: "Started", at: yield* now, ...fence })

  let seq = 0
  const steps = [
    { name: "prepare", output: ["fetching source", `checked out ${version.commitSha?.slice(0, 8)}`] },
    { name: "build", output: ["Step 1/2 : FROM busybox", "Step 2/2 : RUN echo hello", "hello"] }
  ]
  for (const [index, step] of steps.entries()) {
    const startedAt = yield* now
    yield* storage.recordStep(build.id, fence, {
      index,
      name: step.name,
      status: "running",
      startedAt,
      completedAt: null,
      exitCode: null,
      error: null
    })
    const lines: Array<LogLine.LogLine> = []
    for (const text of step.output)
      lines.push({ seq: ++seq, ts: yield* now, stream: "stdout", step: step.name, text })
    yield* storage.appendLogs(build.id, fence, lines)
    yield* storage.recordStep(build.id, fence, {
      index,
      name: step.name,
      status: "succeeded",
      startedAt,
      completedAt: yield* now,
      exitCode: 0,
      error: null
    })
  }
  const done = yield* storage.transition(build.id, {
    _tag: "Succeeded",
    at: yield* now,
    ...fence,
    imageTag: `kiln.local/${app.handle}:${version.commitSha?.slice(0, 8)}`,
    imageDigest: null
  })
  yield* Console.log(`finished ${done.status} (${done.outcome}), image ${done.imageTag}\n`)

  const log = yield* storage.readLogs(Access.all, build.id, 0, 100)
  for (const line of log.lines)
    yield* Console.log(`  ${String(line.seq).padStart(3)} [${line.step}] ${line.text}`)
  const { steps: recorded } = yield* storage.getBuild(Access.all, build.id)
  yield* Console.log(`\nsteps: ${recorded.map((s) => `${s.name}=${s.status}`).join(", ")}`)

  const latest = (yield* storage.listBuilds(Access.all, Query.first(5))).rows
  yield* Console.log(`\nlatest builds in ${filename}:`)
  for (const b of latest) yield* Console.log(`  #${b.sequenceNumber} ${b.id} ${b.status}`)
})

mkdirSync(dirname(filename), { recursive: true })
Effect.runPromise(program.pipe(Effect.provide(SqliteStorage.layer({ filename })))).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
