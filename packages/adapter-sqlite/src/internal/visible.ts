/** How every read and write of a caller's object checks its scope. */
import { Access, type Id, Storage } from "@kiln/core"
import { Result } from "effect"

/** A row the caller may see, or `NotFound`: another workspace's row looks exactly like a missing one. */
export const visible = <R extends { readonly workspace_id: string }>(
  row: R | undefined,
  access: Access.Access,
  entity: string,
  id: string
): Result.Result<R, Storage.NotFound> =>
  row !== undefined && Access.allows(access, row.workspace_id as Id.WorkspaceId)
    ? Result.succeed(row)
    : Result.fail(Storage.NotFound.of(entity, id))
