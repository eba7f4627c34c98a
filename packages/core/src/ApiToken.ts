/**
 * Bearer tokens: a role over a set of workspaces (or all of them). Only the SHA-256 of the secret is
 * stored; the secret is shown once, when the token is created.
 */
import { hash, randomBytes } from "node:crypto"
import { type DateTime, Schema } from "effect"
import * as Access from "./Access.ts"
import { TokenId, WorkspaceId } from "./Id.ts"
import { Name, NewName } from "./Workspace.ts"

export const Role = Schema.Literals(["read", "write", "admin"])
export type Role = typeof Role.Type

/** `"*"` grants every workspace, present and future. */
export const TokenWorkspaces = Schema.Union([
  Schema.Literal("*"),
  Schema.Array(WorkspaceId).check(Schema.isMinLength(1), Schema.isMaxLength(100))
])
export type TokenWorkspaces = typeof TokenWorkspaces.Type

export const TokenHash = Schema.String.check(
  Schema.isPattern(/^[0-9a-f]{64}$/, { expected: "a SHA-256 digest in lowercase hex" })
)

export const ApiToken = Schema.Struct({
  id: TokenId,
  name: Name,
  workspaceIds: TokenWorkspaces,
  role: Role,
  createdAt: Schema.DateTimeUtc,
  expiresAt: Schema.NullOr(Schema.DateTimeUtc),
  revokedAt: Schema.NullOr(Schema.DateTimeUtc)
})
export type ApiToken = typeof ApiToken.Type

export const NewToken = Schema.Struct({
  name: NewName,
  workspaceIds: TokenWorkspaces,
  role: Role,
  tokenHash: TokenHash,
  expiresAt: Schema.NullOr(Schema.DateTimeUtc)
})
export type NewToken = typeof NewToken.Type

export const make = (id: TokenId, input: NewToken, now: DateTime.Utc): ApiToken => ({
  id,
  name: input.name,
  workspaceIds: input.workspaceIds,
  role: input.role,
  createdAt: now,
  expiresAt: input.expiresAt,
  revokedAt: null
})

/** A caller sees a token it could have been granted itself: one within its own workspaces. */
export const visibleTo = (access: Access.Access, token: ApiToken): boolean =>
  access._tag === "All" ||
  (token.workspaceIds !== "*" && token.workspaceIds.every((id) => Access.allows(access, id)))

/** A token's secret: a recognizable prefix and 256 random bits, base64url. Shown once, never stored. */
export const generateSecret = (): string => `kiln_pat_${randomBytes(32).toString("base64url")}`

/**
 * What storage keeps of a secret: its SHA-256, in hex. Every authenticated request hashes its credential,
 * so the one-shot `hash`, which makes no Hash object.
 */
export const hashSecret = (secret: string): string => hash("sha256", secret, "hex")
