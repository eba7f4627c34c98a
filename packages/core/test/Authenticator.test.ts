import { describe, expect, it } from "@effect/vitest"
import { Access, ApiToken, Authenticator, Storage } from "@kiln/core"
import { DateTime, Effect, Layer } from "effect"
import { TestClock } from "effect/testing"

const layer = Authenticator.Authenticator.layer.pipe(Layer.provideMerge(Storage.Storage.layerMemory()))

const refusal = (credential: string) =>
  Authenticator.Authenticator.use((authenticator) =>
    Effect.map(Effect.flip(authenticator.authenticate(credential)), (error) => error._tag)
  )

describe("Authenticator", () => {
  it.effect("authenticates an issued token as its principal, by the secret's hash alone", () =>
    Effect.gen(function* () {
      const storage = yield* Storage.Storage
      const workspace = yield* storage.createWorkspace({ name: "Acme" })
      const { token, secret } = yield* Authenticator.issueToken({
        name: "ci",
        role: "write",
        workspaceIds: [workspace.id],
        expiresAt: null
      })
      expect(secret).toMatch(/^kiln_pat_[A-Za-z0-9_-]{43}$/)
      const stored = yield* storage.findTokenByHash(ApiToken.hashSecret(secret))
      expect(stored._tag).toBe("Some")
      expect(JSON.stringify(stored)).not.toContain(secret)
      const authenticator = yield* Authenticator.Authenticator
      const principal = yield* authenticator.authenticate(secret)
      expect(principal).toEqual({
        name: "ci",
        role: "write",
        access: Access.workspaces([workspace.id]),
        tokenId: token.id,
        allWorkspaces: false
      })
      expect(Authenticator.hasRole(principal, "read")).toBe(true)
      expect(Authenticator.hasRole(principal, "write")).toBe(true)
      expect(Authenticator.hasRole(principal, "admin")).toBe(false)
    }).pipe(Effect.provide(layer))
  )

  it.effect("refuses malformed, unknown, revoked and expired tokens alike", () =>
    Effect.gen(function* () {
      const storage = yield* Storage.Storage
      const now = yield* DateTime.now
      const expiring = yield* Authenticator.issueToken({
        name: "short",
        role: "read",
        workspaceIds: "*",
        expiresAt: DateTime.add(now, { minutes: 5 })
      })
      const revoked = yield* Authenticator.issueToken({
        name: "old",
        role: "admin",
        workspaceIds: "*",
        expiresAt: null
      })
      yield* storage.revokeToken(Access.all, revoked.token.id)
      for (const credential of [
        "",
        "kiln_pat_short",
        `${expiring.secret}x`,
        ApiToken.generateSecret(),
        revoked.secret
      ]) {
        expect(yield* refusal(credential)).toBe("Unauthenticated")
      }
      const authenticator = yield* Authenticator.Authenticator
      expect((yield* authenticator.authenticate(expiring.secret)).allWorkspaces).toBe(true)
      yield* TestClock.adjust("5 minutes")
      expect(yield* refusal(expiring.secret)).toBe("Unauthenticated")
    }).pipe(Effect.provide(layer))
  )
})
