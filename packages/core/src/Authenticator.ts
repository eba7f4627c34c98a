/**
 * The Authenticator turns a bearer credential into a `Principal`: what the caller may see (its workspaces)
 * and do (its role). The default reads Kiln's own tokens from storage — `kiln_pat_…` secrets whose
 * SHA-256 alone is stored — and a host can provide its own.
 */
import { Clock, Context, DateTime, Effect, Layer, Option, Schema } from "effect"
import * as Access from "./Access.ts"
import { type ApiToken, generateSecret, hashSecret, type NewToken, type Role } from "./ApiToken.ts"
import type { Bootstrapped } from "./Bootstrap.ts"
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
  /** Drops what is remembered about a token, so a revocation takes effect at once in this process. */
  readonly forget: (tokenId: TokenId) => Effect.Effect<void>
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

/** Whether a token still grants what it says at `nowMillis`: not revoked, not expired. */
export const isLive = (token: ApiToken, nowMillis: number): boolean =>
  token.revokedAt === null &&
  (token.expiresAt === null || nowMillis < DateTime.toEpochMillis(token.expiresAt))

export interface Options {
  /**
   * How long a token, once checked, is taken on trust (default 1000 ms): the lookup it saves is most of
   * what authenticating costs. A revocation elsewhere (another process) takes effect within this time;
   * `forget` makes one in this process take effect at once. 0 checks storage on every request.
   */
  readonly cacheMs?: number | undefined
  /** At most this many tokens are remembered (default 10,000); the oldest go first. */
  readonly cacheSize?: number | undefined
}

const credentialPattern = /^kiln_pat_[A-Za-z0-9_-]{43}$/

/** Kiln's own tokens, looked up by the SHA-256 of the secret. */
export const make = (options: Options = {}): Effect.Effect<AuthenticatorShape, never, Storage> =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const cacheMs = options.cacheMs ?? 1000
    const cacheSize = options.cacheSize ?? 10_000
    // By the secret's hash, never the secret; unknown credentials are not remembered, so callers choosing
    // them cannot fill it.
    const trusted = new Map<string, { readonly principal: Principal; readonly until: number }>()

    const lookup = (hash: string, now: number) =>
      Effect.gen(function* () {
        // Looked up by the secret's SHA-256: a caller choosing secrets cannot steer the digest's bytes, so
        // how long the lookup takes says nothing about any stored token.
        const found = yield* storage.findTokenByHash(hash)
        if (Option.isNone(found)) return yield* rejected
        const token = found.value
        if (!isLive(token, now)) return yield* rejected
        const principal = principalOf(token)
        if (cacheMs > 0) {
          const expires =
            token.expiresAt === null ? Number.POSITIVE_INFINITY : DateTime.toEpochMillis(token.expiresAt)
          if (trusted.size >= cacheSize) trusted.delete(trusted.keys().next().value!)
          trusted.set(hash, { principal, until: Math.min(now + cacheMs, expires) })
        }
        return principal
      })

    return {
      authenticate: (credential) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          if (!credentialPattern.test(credential)) return Effect.fail(rejected)
          const hash = hashSecret(credential)
          const known = trusted.get(hash)
          return known !== undefined && now < known.until
            ? Effect.succeed(known.principal)
            : lookup(hash, now)
        }),
      forget: (tokenId) =>
        Effect.sync(() => {
          for (const [hash, { principal }] of trusted) if (principal.tokenId === tokenId) trusted.delete(hash)
        })
    }
  })

export class Authenticator extends Context.Service<Authenticator, AuthenticatorShape>()(
  "@kiln/core/Authenticator"
) {}

/** Kiln's own tokens, with the default cache (see `Options`). */
export const layer: Layer.Layer<Authenticator, never, Storage> = Layer.effect(Authenticator, make())

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

/**
 * The first start on a database without tokens (see `Storage.bootstrap`): the first workspace, unless one
 * exists, and an admin token over every workspace, whose secret comes back with `Issued` and is never seen
 * again. Every other call, at the same moment or later, from this process or another, answers `Existing`.
 */
export const bootstrap = (input: { readonly workspaceName: string; readonly tokenName: string }) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const secret = generateSecret()
    const bootstrapped: Bootstrapped = yield* storage.bootstrap({
      workspace: { name: input.workspaceName },
      token: { name: input.tokenName, tokenHash: hashSecret(secret), expiresAt: null }
    })
    return bootstrapped._tag === "Issued" ? { ...bootstrapped, secret } : bootstrapped
  })
