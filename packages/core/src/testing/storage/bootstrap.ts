import { describe, expect } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as Access from "../../Access.ts"
import type { NewBootstrap } from "../../Bootstrap.ts"
import * as Query from "../../Query.ts"
import { Storage } from "../../Storage.ts"
import { type MakeStorage, test } from "./fixtures.ts"

/** The input of the `n`th process to start: each makes a secret of its own. */
const input = (n: number): NewBootstrap => ({
  workspace: { name: "Default" },
  token: { name: `admin (first start of ${n})`, tokenHash: n.toString(16).padStart(64, "0"), expiresAt: null }
})

/** The first start's workspace and admin token: made once, however many callers start together. */
export const bootstrap = (name: string, make: MakeStorage) =>
  describe(`${name} › storage: the first start`, () => {
    const it = test(make)

    it("12 first starts at once on an empty storage: one workspace, one admin token, one caller told it issued it", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const answers = yield* Effect.all(
          Array.from({ length: 12 }, (_, n) => storage.bootstrap(input(n + 1))),
          { concurrency: "unbounded" }
        )
        const issued = answers.flatMap((answer) => (answer._tag === "Issued" ? [answer] : []))
        expect(issued).toHaveLength(1)
        const { workspace, token, createdWorkspace } = issued[0]!
        expect(createdWorkspace).toBe(true)
        expect(workspace.name).toBe("Default")
        expect(token).toMatchObject({ workspaceIds: "*", role: "admin", expiresAt: null, revokedAt: null })
        for (const answer of answers) {
          if (answer._tag === "Existing")
            expect(answer).toEqual({ _tag: "Existing", first: token, tokens: 1 })
        }
        const workspaces = yield* storage.listWorkspaces(Access.all, Query.first(10))
        expect(workspaces.rows).toEqual([workspace])
        const tokens = yield* storage.listTokens(Access.all, Query.first(10))
        expect(tokens.rows).toEqual([token])
        // The token stored is the issuing caller's: its secret's hash finds it.
        const n = answers.indexOf(issued[0]!) + 1
        expect(yield* storage.findTokenByHash(input(n).token.tokenHash)).toEqual(Option.some(token))
      }))

    it("gives the token to the oldest workspace when there is one, and changes nothing once a token exists", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const oldest = yield* storage.createWorkspace({ name: "made by the embedding app" })
        yield* storage.createWorkspace({ name: "made later" })
        const first = yield* storage.bootstrap(input(1))
        expect(first).toMatchObject({ _tag: "Issued", workspace: oldest, createdWorkspace: false })
        if (first._tag !== "Issued") return
        // A revoked token still counts: the database was bootstrapped once, and stays so.
        yield* storage.revokeToken(Access.all, first.token.id)
        const revoked = yield* storage.getToken(Access.all, first.token.id)
        expect(yield* storage.bootstrap(input(2))).toEqual({ _tag: "Existing", first: revoked, tokens: 1 })
        expect((yield* storage.listWorkspaces(Access.all, Query.first(10))).total).toBe(2)
        expect((yield* storage.listTokens(Access.all, Query.first(10))).total).toBe(1)
      }))
  })
