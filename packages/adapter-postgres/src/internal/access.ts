/** What a caller may see, checked on the rows a statement read or inside the statement that writes. */
import { Access, type Id, Storage } from "@kiln/core"
import { Effect } from "effect"

/** The row a caller may see, or `NotFound`: another workspace's row looks exactly like a missing one. */
export const visible =
  (access: Access.Access, entity: string, id: string) =>
  <R extends { readonly workspace_id: string }>(
    found: ReadonlyArray<R>
  ): Effect.Effect<R, Storage.NotFound> => {
    const row = found[0]
    return row !== undefined && Access.allows(access, row.workspace_id as Id.WorkspaceId)
      ? Effect.succeed(row)
      : Effect.fail(Storage.NotFound.of(entity, id))
  }

/**
 * The access as two parameters, for a statement that writes only a row the caller may see: whether every
 * workspace is allowed, and the ids of those that are (`($n OR workspace_id = ANY($n+1))`).
 */
export const scope = (access: Access.Access): readonly [all: boolean, ids: ReadonlyArray<string>] =>
  access._tag === "All" ? [true, []] : [false, [...access.ids]]

/** The condition `scope`'s parameters make, from parameter `from`. */
export const inScope = (from: number, alias?: string) =>
  `($${from}::boolean OR ${alias === undefined ? "" : `${alias}.`}workspace_id = ANY($${from + 1}::text[]))`
