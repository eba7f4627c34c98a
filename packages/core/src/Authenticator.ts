/**
 * The Authenticator turns a bearer credential into a `Principal`: what the caller may see (its workspaces)
 * and do (its role). The default reads Kiln's own tokens from storage — `kiln_pat_…` secrets whose
 * SHA-256 alone is stored — and a host can provide its own.
 */
import { Clock, Context, DateTime, Effect, Layer, Option, Schema } from "effect"
import * as Access from "./Access.ts"
import { type ApiToken, generateSecret, hashSecret, type NewToken, type Role } from "./ApiToken.ts"
import type { TokenId } from "./Id.ts"
import { Storage } from "./Storage.ts"
import type { StorageError } from "./StorageError.ts"

export interface Principal {
  readonly name: string
  readonly role: Role
  readonly access: Access.Access
  /** The token behind this principal, when it is one of Kiln's. */
  readonly tokenId: TokenId | null
  /** True when the principal may see every workspace, present and future. */
  readonly allWorkspaces: boolean
}

/** The credential is missing, unknown, revoked or expired: callers learn no more than that. */
export class Unauthenticated extends Schema.TaggedError<Unauthenticated>()("Unauthenticated", {
  message: Schema.String
}) {}

export interface AuthenticatorShape {
  readonly authenticate: (credential: string) => Effect.Effect<Principal, Unauthenticated | StorageError>
}

const roleRank: Record<Role, number> = { read: 0, write: 1, admin: 2 }

/** Whether a principal's role includes `needed` (admin ⊇ write ⊇ read). */
export const hasRole = (principal: Principal, needed: Role): boolean =>
  roleRank[principal.role] >= roleRank[needed]

export const principalOf = (token: ApiToken): Principal => ({
  name: token.name,
  role: token.role,
  access: token.workspaceIds === "*" ? Access.all : Access.workspaces(token.workspaceIds),
  tokenId: token.id,
  allWorkspaces: token.workspaceIds === "*"
})

const rejected = new Unauthenticated({ message: "missing or invalid credentials" })

export class Authenticator extends Context.Service<Authenticator, AuthenticatorShape>()(
  "@kiln/core/Authenticator"
) {
  /** Kiln's own tokens, looked up by the SHA-256 of the secret. */
  static readonly layer: Layer.Layer<Authenticator, never, Storage> = Layer.effect(
    Authenticator,
    Effect.gen(function* () {
      const storage = yield* Storage
      return {
        authenticate: (credential) =>
          Effect.gen(function* () {
            if (!/^kiln_pat_[A-Za-z0-9_-]{43}$/.test(credential)) return yield* rejected
            // Looked up by the secret's SHA-256: a caller choosing secrets cannot steer the digest's bytes, so
            // how long the lookup takes says nothing about any stored token.
            const found = yield* storage.findTokenByHash(hashSecret(credential))
            if (Option.isNone(found)) return yield* rejected
            const token = found.value
            const now = DateTime.makeUnsafe(yield* Clock.currentTimeMillis)
            if (token.revokedAt !== null) return yield* rejected
            if (token.expiresAt !== null && !DateTime.isLessThan(now, token.expiresAt)) return yield* rejected
            return principalOf(token)
          })
      }
    })
  )
}

/**
 * Issues one of Kiln's tokens: stores the SHA-256 of a fresh secret and returns the token with the secret,
 * which is never seen again.
 */
export const issueToken = (input: Omit<NewToken, "tokenHash">) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const secret = generateSecret()
    const token = yield* storage.createToken({ ...input, tokenHash: hashSecret(secret) })
    return { token, secret }
  })
