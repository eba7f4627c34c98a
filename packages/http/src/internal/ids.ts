/**
 * The dialects name objects by the UUID a Kiln id encodes; Kiln's prefixed ids are accepted too.
 */
import { Id } from "@kiln/core"

/** The Kiln id a path or query names, or `undefined` when it names nothing of this kind. */
export const idOf = <P extends Id.Prefix>(prefix: P, text: string): Id.IdTypes[P] | undefined =>
  text.startsWith(`${prefix}_`) ? (text as Id.IdTypes[P]) : Id.fromUuid(prefix, text)
