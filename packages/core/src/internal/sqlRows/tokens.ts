/**
 * A token's row: its grants are JSON text, with a flag for all workspaces, and its hash is written but
 * never read back.
 */
import type * as ApiToken from "../../ApiToken.ts"
import type * as Id from "../../Id.ts"
import { millis, millisOrNull, parse, utc, utcOrNull } from "./columnValues.ts"

/** A token as it is read back: everything but its hash. */
export interface TokenRow {
  readonly id: string
  readonly name: string
  readonly workspace_ids: string
  readonly role: string
  readonly created_at: number
  readonly expires_at: number | null
  readonly revoked_at: number | null
}

/** Every column of a token but its hash, which is never read back out. */
export const tokenColumns = [
  "id",
  "name",
  "workspace_ids",
  "role",
  "created_at",
  "expires_at",
  "revoked_at"
] as const satisfies ReadonlyArray<keyof TokenRow>

export const toToken = (row: TokenRow): ApiToken.ApiToken => ({
  id: row.id as Id.TokenId,
  name: row.name,
  workspaceIds: parse(row.workspace_ids),
  role: row.role as ApiToken.Role,
  createdAt: utc(row.created_at),
  expiresAt: utcOrNull(row.expires_at),
  revokedAt: utcOrNull(row.revoked_at)
})

export const fromToken = (
  token: ApiToken.ApiToken,
  tokenHash: string
): TokenRow & { readonly token_hash: string; readonly all_workspaces: number } => ({
  id: token.id,
  name: token.name,
  workspace_ids: JSON.stringify(token.workspaceIds),
  // SQLite's INTEGER 1 or 0, which Postgres' BOOLEAN reads as true or false.
  all_workspaces: token.workspaceIds === "*" ? 1 : 0,
  role: token.role,
  token_hash: tokenHash,
  created_at: millis(token.createdAt),
  expires_at: millisOrNull(token.expiresAt),
  revoked_at: millisOrNull(token.revokedAt)
})
