/**
 * Random datasets for the query suite: builds in every state, with NULLs and ties in every sortable field,
 * and the snapshot the in-memory oracle reads back through the storage itself.
 */
import { Clock, DateTime, Effect } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"
import * as Access from "../../Access.ts"
import * as App from "../../App.ts"
import type { BuildStep } from "../../Build.ts"
import type * as Evaluator from "../../Evaluator.ts"
import type * as Fields from "../../Fields.ts"
import * as Query from "../../Query.ts"
import { Storage } from "../../Storage.ts"

const creators = [null, "ada", "Ada", "bot:ci", "bot:release", "a_b%c", "x*y?[z]", "ünïcode", "😀 emoji", ""]
const errors = [null, "exit code 1", "exit code 2", "Exit Code 1", "timeout", "50% done_"]
const stepNames = ["prepare", "build", "push", "deploy"]

export interface Plan {
  readonly app: number
  readonly version: number
  readonly creator: number
  readonly trigger: number
  readonly fate: number
  readonly error: number
  readonly steps: ReadonlyArray<{ readonly name: number; readonly status: number; readonly exit: number }>
  readonly gap: number
}

const planArbitrary: fc.Arbitrary<Plan> = fc.record({
  app: fc.nat(3),
  version: fc.nat(2),
  creator: fc.nat(creators.length - 1),
  trigger: fc.nat(2),
  fate: fc.nat(6),
  error: fc.nat(errors.length - 1),
  steps: fc.array(fc.record({ name: fc.nat(3), status: fc.nat(3), exit: fc.nat(3) }), { maxLength: 3 }),
  // Mostly no time between events, so timestamps tie.
  gap: fc.constantFrom(0, 0, 0, 1_000, 60_000)
})

export const datasetArbitrary = fc.array(planArbitrary, { minLength: 20, maxLength: 60 })

/** Creates two workspaces with four apps and their versions, then one build per plan, in order. */
export const populate = (plans: ReadonlyArray<Plan>) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    yield* TestClock.setTime(1_767_225_600_000)
    const workspaces = [
      yield* storage.createWorkspace({ name: "one" }),
      yield* storage.createWorkspace({ name: "two" })
    ]
    const apps = yield* Effect.forEach(["web", "api", "docs", "web2"], (handle, i) =>
      storage.createApp(Access.all, {
        workspaceId: workspaces[i % 2]!.id,
        handle,
        name: handle.toUpperCase(),
        kind: i === 2 ? "worker" : "app",
        build: App.defaultBuildSettings
      })
    )
    const versions = yield* Effect.forEach(apps, (app, a) =>
      Effect.forEach([0, 1, 2], (v) =>
        storage.createAppVersion(Access.all, {
          appId: app.id,
          source: {
            type: "git",
            url: `https://git.example.com/${app.handle}.git`,
            commitSha: `${"abc1def0"[a]}${v}`.padEnd(40, "0")
          }
        })
      )
    )
    for (const plan of plans) {
      yield* TestClock.adjust(plan.gap)
      const at = () => Effect.map(Clock.currentTimeMillis, (ms) => DateTime.makeUnsafe(ms))
      const fate = plan.fate
      const build = yield* storage.createBuild(Access.all, {
        appVersionId: versions[plan.app]![plan.version]!.id,
        trigger: (["manual", "auto", "redeploy"] as const)[plan.trigger]!,
        createdBy: creators[plan.creator]!,
        ...(fate === 6 ? { skipReason: "paths excluded" } : {})
      })
      if (fate === 0 || fate === 6) continue
      if (fate === 1) {
        yield* storage.requestCancel(Access.all, build.id, errors[plan.error] ?? "cancelled")
        continue
      }
      const [claimed] = yield* storage.claimNext({ owner: `engine-${plan.app}`, leaseMs: 60_000, max: 1 })
      if (claimed === undefined || claimed.id !== build.id) continue
      const fence = { owner: claimed.owner!, attempt: claimed.attempt }
      for (const [index, step] of plan.steps.entries()) {
        const status = (["running", "succeeded", "failed", "cancelled"] as const)[step.status]!
        const stepRow: BuildStep = {
          index,
          name: stepNames[step.name]!,
          status,
          startedAt: yield* at(),
          completedAt: status === "running" ? null : yield* at(),
          exitCode: status === "running" ? null : [0, 1, 2, 137][step.exit]!,
          error: status === "failed" ? (errors[plan.error] ?? null) : null
        }
        yield* storage.recordStep(build.id, fence, stepRow)
      }
      if (fate === 2) continue
      yield* storage.transition(build.id, { _tag: "Started", at: yield* at(), ...fence })
      if (fate === 3) continue
      yield* TestClock.adjust(plan.gap)
      if (fate === 4) {
        yield* storage.transition(build.id, {
          _tag: "Failed",
          at: yield* at(),
          ...fence,
          error: errors[plan.error] ?? "failed"
        })
      } else {
        yield* storage.transition(build.id, {
          _tag: "Succeeded",
          at: yield* at(),
          ...fence,
          imageTag: plan.error % 2 === 0 ? `registry.local/${plan.app}:${plan.version}` : null,
          imageDigest: null
        })
      }
    }
    return { workspaces, apps, versions }
  })

/** Everything the oracle needs, read back through the storage itself. */
export const snapshot = Effect.gen(function* () {
  const storage = yield* Storage
  const builds = (yield* storage.listBuilds(Access.all, Query.first(100_000))).rows
  const apps = (yield* storage.listApps(Access.all, Query.first(100_000))).rows
  const versions = (yield* storage.listAppVersions(Access.all, Query.first(100_000))).rows
  const steps = new Map<string, ReadonlyArray<BuildStep>>()
  for (const build of builds) steps.set(build.id, (yield* storage.getBuild(Access.all, build.id)).steps)
  const byId: { readonly [E in Fields.Entity]?: ReadonlyMap<string, Fields.Rows[E]> } = {
    apps: new Map(apps.map((app) => [app.id, app])),
    appVersions: new Map(versions.map((version) => [version.id, version]))
  }
  const byOwner: { readonly [E in Fields.Entity]?: ReadonlyMap<string, ReadonlyArray<Fields.Rows[E]>> } = {
    steps
  }
  const resolve: Evaluator.Resolve = {
    one: (entity, id) => byId[entity]?.get(id),
    many: (entity, id) => byOwner[entity]?.get(id) ?? []
  }
  const rows: { readonly [E in Fields.Entity]?: ReadonlyArray<Fields.Rows[E]> } = {
    builds,
    apps,
    appVersions: versions,
    steps: [...steps.values()].flat()
  }
  const rowsOf: RowsOf = (entity) => rows[entity] ?? []
  return { builds, resolve, rowsOf }
})

/** The dataset's rows of an entity. */
export type RowsOf = <E extends Fields.Entity>(entity: E) => ReadonlyArray<Fields.Rows[E]>
