import { describe, expect, it } from "@effect/vitest"
import { Id } from "@kiln/core"
import { Claim } from "@kiln/core/adapter"
import fc from "fast-check"

const ws = (n: number) => Id.fromUuid("wsp", `0190b3a0-0000-7000-8000-${String(n).padStart(12, "0")}`)!
const app = (n: number) => Id.fromUuid("app", `0190b3a0-0000-7000-8000-${String(n).padStart(12, "0")}`)!
const build = (n: number) => Id.fromUuid("bld", `0190b3a0-0000-7000-8000-${String(n).padStart(12, "0")}`)!

const candidates = fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 })), {
  maxLength: 40
})

describe("Claim.select", () => {
  it("takes candidates in order up to max when there are no caps", () => {
    const list = [1, 2, 3].map((n) => ({ id: build(n), workspaceId: ws(1), entityId: app(1) }))
    const none = { byWorkspace: new Map(), byApp: new Map() }
    expect(Claim.select(list, none, 2, undefined).map((c) => c.id)).toEqual([build(1), build(2)])
    expect(Claim.select(list, none, 0, undefined)).toEqual([])
  })

  it("never exceeds a cap, counting active builds, and skips only what a cap forbids", () =>
    fc.assert(
      fc.property(
        candidates,
        fc.integer({ min: 0, max: 10 }),
        fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
        fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 })), { maxLength: 5 }),
        (pairs, max, perWorkspace, perApp, activePairs) => {
          const list = pairs.map(([w, a], i) => ({
            id: build(i),
            workspaceId: ws(w),
            entityId: app(w * 10 + a)
          }))
          const byWorkspace = new Map<string, number>()
          const byApp = new Map<string, number>()
          for (const [w, a] of activePairs) {
            byWorkspace.set(ws(w), (byWorkspace.get(ws(w)) ?? 0) + 1)
            byApp.set(app(w * 10 + a), (byApp.get(app(w * 10 + a)) ?? 0) + 1)
          }
          const limits = { perWorkspace, perApp }
          const picked = Claim.select(list, { byWorkspace, byApp }, max, limits)
          expect(picked.length).toBeLessThanOrEqual(max)
          const indexes = picked.map((c) => list.indexOf(c))
          expect(indexes).toEqual([...indexes].sort((a, b) => a - b))
          const count = (key: (c: (typeof list)[number]) => string, base: Map<string, number>) => {
            const totals = new Map(base)
            for (const c of picked) totals.set(key(c), (totals.get(key(c)) ?? 0) + 1)
            return totals
          }
          if (perWorkspace !== undefined) {
            for (const c of picked)
              expect(count((x) => x.workspaceId, byWorkspace).get(c.workspaceId)!).toBeLessThanOrEqual(
                perWorkspace
              )
          }
          if (perApp !== undefined) {
            for (const c of picked)
              expect(count((x) => x.entityId, byApp).get(c.entityId)!).toBeLessThanOrEqual(perApp)
          }
          // Greedy: every candidate before the last pick that was left out was blocked by a cap.
          if (picked.length < max) {
            const chosen = new Set(picked)
            const workspaceTotals = count((x) => x.workspaceId, byWorkspace)
            const appTotals = count((x) => x.entityId, byApp)
            for (const c of list) {
              if (chosen.has(c)) continue
              const blocked =
                (perWorkspace !== undefined && (workspaceTotals.get(c.workspaceId) ?? 0) >= perWorkspace) ||
                (perApp !== undefined && (appTotals.get(c.entityId) ?? 0) >= perApp)
              expect(blocked).toBe(true)
            }
          }
        }
      )
    ))
})
