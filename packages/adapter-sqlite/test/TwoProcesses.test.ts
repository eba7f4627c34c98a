import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { Access, App, Event, Id, Query, Storage, Webhook } from "@kiln/core"
import { Clock, DateTime, Effect, Schema } from "effect"
import { afterAll } from "vitest"
import { SqliteStorage } from "../src/index.ts"
import { runScript } from "./fixtures/runScript.ts"

const dir = mkdtempSync(join(tmpdir(), "kiln-sqlite-race-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const raceFile = join(dir, "race.db")
const sendersFile = join(dir, "senders.db")

const builds = 1000

it.live(
  "two processes claiming from one file give each of 1,000 builds to exactly one of them",
  () =>
    Effect.gen(function* () {
      const storage = yield* Storage.Storage
      // Two workspaces, two apps each, so the claims interleave rows of different apps.
      for (const name of ["a", "b"]) {
        const workspace = yield* storage.createWorkspace({ name })
        for (const handle of ["web", "api"]) {
          const app = yield* storage.createApp(Access.all, {
            workspaceId: workspace.id,
            handle,
            name: handle,
            kind: "app",
            build: App.defaultBuildSettings
          })
          const version = yield* storage.createAppVersion(Access.all, {
            appId: app.id,
            source: { type: "git", url: "https://git.example.com/x.git", commitSha: "a".repeat(40) }
          })
          for (let i = 0; i < builds / 4; i++) {
            yield* storage.createBuild(Access.all, {
              appVersionId: version.id,
              trigger: "manual",
              createdBy: null
            })
          }
        }
      }

      // Both start claiming at the same moment, well after both have opened the file.
      const startAt = String((yield* Clock.currentTimeMillis) + 1500)
      const started = yield* Clock.currentTimeMillis
      const [one, two] = yield* Effect.all(
        [
          runScript("./claimer.ts", [raceFile, "engine-1", startAt]),
          runScript("./claimer.ts", [raceFile, "engine-2", startAt])
        ],
        { concurrency: 2 }
      )
      const wall = (yield* Clock.currentTimeMillis) - started
      for (const child of [one, two]) {
        expect(child.stderr).toBe("")
        expect(child.code).toBe(0)
      }
      const results = [one, two].map((p) => JSON.parse(p.stdout) as { ids: Array<string>; ms: number })
      const claimed = results.flatMap((r) => r.ids)
      expect(claimed.length).toBe(builds)
      expect(new Set(claimed).size).toBe(builds)

      const { rows: stored } = yield* storage.listBuilds(Access.all, Query.first(builds + 1))
      expect(stored.length).toBe(builds)
      expect(stored.every((b) => b.phase === "initializing" && b.attempt === 1)).toBe(true)
      const owners = new Map(results.flatMap((r, i) => r.ids.map((id) => [id, `engine-${i + 1}`] as const)))
      expect(stored.every((b) => b.owner === owners.get(b.id))).toBe(true)
      console.info(
        `two-process race: engine-1 claimed ${results[0]!.ids.length} in ${results[0]!.ms} ms, ` +
          `engine-2 claimed ${results[1]!.ids.length} in ${results[1]!.ms} ms (${wall} ms wall, with start-up)`
      )
    }).pipe(Effect.provide(SqliteStorage.layer({ filename: raceFile }))),
  120_000
)

const versions = 150
const pings = 40

it.live(
  "two sender processes on one file fan each event out once and send each delivery once, a subject's in order",
  () =>
    Effect.gen(function* () {
      const storage = yield* Storage.Storage
      const secret = Schema.decodeSync(Webhook.Secret)(`whsec_${"A".repeat(32)}`)
      const endpoints: Array<Webhook.Webhook> = []
      for (const name of ["a", "b"]) {
        const workspace = yield* storage.createWorkspace({ name })
        const app = yield* storage.createApp(Access.all, {
          workspaceId: workspace.id,
          handle: "web",
          name: "web",
          kind: "app",
          build: App.defaultBuildSettings
        })
        for (const types of [[], ["app_version.ready"]] as const) {
          endpoints.push(
            yield* storage.createWebhook(Access.all, {
              workspaceId: workspace.id,
              url: "https://receiver.example.com/",
              types,
              enabled: true,
              secret
            })
          )
        }
        for (let i = 0; i < versions; i++) {
          yield* storage.createAppVersion(Access.all, {
            appId: app.id,
            source: { type: "git", url: "https://git.example.com/x.git", commitSha: "a".repeat(40) }
          })
        }
      }
      // Pings share one subject per endpoint: each waits for the one before it.
      for (const endpoint of endpoints) {
        for (let i = 0; i < pings; i++) {
          const at = DateTime.makeUnsafe(yield* Clock.currentTimeMillis)
          const ping = Event.ping(yield* Id.generate("msg"), endpoint.workspaceId, endpoint.id, at)
          yield* storage.enqueuePing(Access.all, endpoint.id, ping)
        }
      }

      const startAt = String((yield* Clock.currentTimeMillis) + 1500)
      const children = yield* Effect.all(
        [
          runScript("./sender.ts", [sendersFile, "sender-1", startAt]),
          runScript("./sender.ts", [sendersFile, "sender-2", startAt])
        ],
        { concurrency: 2 }
      )
      for (const child of children) {
        expect(child.stderr).toBe("")
        expect(child.code).toBe(0)
      }
      const claims = children.flatMap(
        (child) => (JSON.parse(child.stdout) as { claims: Array<{ id: string; at: number }> }).claims
      )
      const claimedAt = new Map(claims.map((claim) => [claim.id, claim.at]))
      expect(claimedAt.size).toBe(claims.length)

      const expected = endpoints.length * (versions + pings)
      expect(claims.length).toBe(expected)
      for (const endpoint of endpoints) {
        // Oldest first: the delivery log is newest first.
        const log = (yield* storage.listDeliveries(Access.all, endpoint.id, {
          before: null,
          limit: expected
        })).toReversed()
        expect(log.length).toBe(versions + pings)
        expect(log.every((delivery) => delivery.status === "delivered" && delivery.attempts === 1)).toBe(true)
        expect(new Set(log.map((delivery) => delivery.eventId)).size).toBe(log.length)
        const pinged = log.filter((delivery) => delivery.subject === "ping").map((d) => claimedAt.get(d.id)!)
        expect(pinged).toEqual(pinged.toSorted((x, y) => x - y))
      }
      expect(yield* storage.fanOutEvents(100)).toBe(0)
      const perProcess = children.map((child) => JSON.parse(child.stdout).claims.length)
      console.info(`two-process senders: ${perProcess.join(" and ")} of ${expected} deliveries`)
    }).pipe(Effect.provide(SqliteStorage.layer({ filename: sendersFile }))),
  120_000
)
