/**
 * Git sources as clients give them, refused when given if the source store would refuse to fetch them
 * (`SourceStore.checkGit`): no version, trigger or deployment is stored that could only fail, and the
 * 400 says what is expected of the field, never what is on the server's disk.
 */
import type { SourceStore } from "@kiln/core"

/** The refusal of `url` (and `ref`), as `<field>: <what is expected>` with the request's names for them. */
export const refusal = (
  sources: SourceStore.SourceStoreShape,
  source: { readonly url: string; readonly ref?: string | undefined },
  names: { readonly url: string; readonly ref: string }
): string | undefined => {
  const refused = sources.checkGit(source.url, source.ref)
  return refused === undefined ? undefined : `${names[refused.field]}: ${refused.issue}`
}
