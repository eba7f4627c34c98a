/**
 * The first start on an empty database: one workspace and one admin token over every workspace, made
 * once however many processes start together on the same database (`Storage.bootstrap` decides, under
 * the database's own lock). `Authenticator.bootstrap` makes the token's secret, which only the caller told
 * `Issued` ever sees.
 */
import type { ApiToken, NewToken } from "./ApiToken.ts"
import type { NewWorkspace, Workspace } from "./Workspace.ts"

/** What `Storage.bootstrap` stores when the database has no token yet. */
export interface NewBootstrap {
  /** The workspace to create when the database has none. */
  readonly workspace: NewWorkspace
  /** The admin token, granted every workspace, present and future. */
  readonly token: Omit<NewToken, "workspaceIds" | "role">
}

export type Bootstrapped =
  /** This call issued the token, in the oldest workspace or (`createdWorkspace`) a new one. */
  | {
      readonly _tag: "Issued"
      readonly workspace: Workspace
      readonly createdWorkspace: boolean
      readonly token: ApiToken
    }
  /** The database had tokens already (`first` the oldest, `tokens` how many): nothing changed. */
  | { readonly _tag: "Existing"; readonly first: ApiToken; readonly tokens: number }

/** The admin token a first start stores, as `NewToken` gives it to storage. */
export const adminToken = (
  input: NewBootstrap["token"]
): NewToken & { readonly workspaceIds: "*"; readonly role: "admin" } => ({
  ...input,
  workspaceIds: "*",
  role: "admin"
})
