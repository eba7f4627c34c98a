/**
 * The dialects name objects by the UUID a Kiln id encodes, the canonical API by the prefixed id; each
 * takes the other form too.
 */
import { Id } from "@kiln/core"

/** The Kiln id a path or query names, or `undefined` when it names nothing of this kind. */
export const idOf = <P extends Id.Prefix>(prefix: P, text: string): Id.IdTypes[P] | undefined =>
  text.startsWith(`${prefix}_`) ? (text as Id.IdTypes[P]) : Id.fromUuid(prefix, text)

/**
 * The id a canonical path or body names, in either form. Text that is neither passes through as it is,
 * so that storage answers it as it answers any unknown id.
 */
export const canonicalId = <P extends Id.Prefix>(prefix: P, text: string): Id.IdTypes[P] =>
  idOf(prefix, text) ?? (text as Id.IdTypes[P])
