/**
 * Ids as clients send them, decoded at the edge. The dialects name objects by the UUID a Kiln id encodes,
 * the canonical API by the prefixed id; each takes the other form too. Text that is neither, or an id of
 * another kind, names nothing: it is answered as a missing object is.
 */
import { Id, Storage } from "@kiln/core"
import { Effect, Option, Schema } from "effect"
import { isA } from "./errors.ts"

/** The Kiln id `text` names, decoded with its kind's schema, or from the UUID it encodes; `undefined` when it is neither. */
export const idOf = <P extends Id.Prefix>(prefix: P, text: string): Id.IdTypes[P] | undefined =>
  Option.getOrUndefined(Schema.decodeUnknownOption(Id.schemas[prefix])(text)) ?? Id.fromUuid(prefix, text)

/** What storage calls the objects of each kind in its `NotFound`. */
const entities: { readonly [P in Id.Prefix]: string } = {
  wsp: "workspace",
  app: "app",
  ver: "app version",
  bld: "build",
  trg: "trigger",
  evt: "source event",
  tok: "token",
  msg: "event",
  whk: "webhook",
  dlv: "delivery"
}

/**
 * The id a canonical path or body names, in either form. Anything else fails with the `NotFound` storage
 * answers for a missing object, naming the text as it was sent, so the two answers differ only in that.
 */
export const canonicalId = <P extends Id.Prefix>(
  prefix: P,
  text: string
): Effect.Effect<Id.IdTypes[P], Storage.NotFound> => {
  const id = idOf(prefix, text)
  return id === undefined ? Effect.fail(Storage.NotFound.of(entities[prefix], text)) : Effect.succeed(id)
}

/**
 * The object a dialect names by `text`, found with `get`. Text that is no id of the kind fails as a missing
 * object does, with the dialect's `notFound` in place of storage's.
 */
export const lookUp = <P extends Id.Prefix, A, E, R, N>(
  prefix: P,
  text: string,
  get: (id: Id.IdTypes[P]) => Effect.Effect<A, E, R>,
  notFound: N
) =>
  Effect.catchIf(Effect.flatMap(canonicalId(prefix, text), get), isA(Storage.NotFound), () =>
    Effect.fail(notFound)
  )
