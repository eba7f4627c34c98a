import { describe, expect, it } from "@effect/vitest"
import { Access, ApiToken, Authenticator, Storage } from "@kiln/core"
import { DateTime, Effect, Layer } from "effect"
import { TestClock } from "effect/testing"

const layer = Authenticator.layer.pipe(Layer.provideMerge(Storage.layerMemory()))

const refusal = (credential: string) =>
  Authenticator.Authenticator.use((authenticator) =>
    Effect.map(Effect.flip(authenticator.authenticate(credential)), (error) => error._tag)
  )

describe("Authenticator", () => {
  it("stores a secret's SHA-256 in hex, so tokens issued by any release still authenticate", () => {
    expect(ApiToken.hashSecret("kiln_pat_abc")).toBe(
      "225a5d1e6981286c2371b1f959ecf2218ee64dbf89d8c64554316cfd864b4409"
    )
  })

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

  it.effect(
    "trusts a checked token for cacheMs: another process's revocation lands within it, forget at once",
    () =>
      Effect.gen(function* () {
        const storage = yield* Storage.Storage
        const authenticator = yield* Authenticator.Authenticator
        const issue = (name: string) =>
          Authenticator.issueToken({ name, role: "read", workspaceIds: "*", expiresAt: null })
        const elsewhere = yield* issue("revoked elsewhere")
        const here = yield* issue("revoked here")
        yield* authenticator.authenticate(elsewhere.secret)
        yield* authenticator.authenticate(here.secret)
        // Revoked in storage alone, as another process would: still trusted until the cache time passes.
        yield* storage.revokeToken(Access.all, elsewhere.token.id)
        yield* TestClock.adjust("999 millis")
        expect((yield* authenticator.authenticate(elsewhere.secret)).name).toBe("revoked elsewhere")
        yield* TestClock.adjust("1 millis")
        expect(yield* refusal(elsewhere.secret)).toBe("Unauthenticated")
        // Never trusted past its own expiry, however recently checked.
        const soon = yield* Authenticator.issueToken({
          name: "soon",
          role: "read",
          workspaceIds: "*",
          expiresAt: DateTime.add(yield* DateTime.now, { milliseconds: 300 })
        })
        yield* authenticator.authenticate(soon.secret)
        yield* TestClock.adjust("300 millis")
        expect(yield* refusal(soon.secret)).toBe("Unauthenticated")
        // Revoked here: forgotten with it, so refused at once.
        yield* storage.revokeToken(Access.all, here.token.id)
        yield* authenticator.forget(here.token.id)
        expect(yield* refusal(here.secret)).toBe("Unauthenticated")
      }).pipe(Effect.provide(layer))
  )

  it.effect("checks storage on every request with cacheMs 0", () =>
    Effect.gen(function* () {
      const storage = yield* Storage.Storage
      const authenticator = yield* Authenticator.Authenticator
      const { token, secret } = yield* Authenticator.issueToken({
        name: "uncached",
        role: "read",
        workspaceIds: "*",
        expiresAt: null
      })
      yield* authenticator.authenticate(secret)
      yield* storage.revokeToken(Access.all, token.id)
      expect(yield* refusal(secret)).toBe("Unauthenticated")
    }).pipe(
      Effect.provide(
        Layer.effect(Authenticator.Authenticator, Authenticator.make({ cacheMs: 0 })).pipe(
          Layer.provideMerge(Storage.layerMemory())
        )
      )
    )
  )
})
