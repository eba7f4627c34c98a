/**
 * The cursor key from the environment: a file of its own, because the default key is made once per
 * module graph, at first use.
 */
import { expect, it } from "@effect/vitest"
import { Access, Cursor, Fields, OrderBy } from "@kiln/core"
import { Effect } from "effect"

const secret = "an-environment-secret-of-32-bytes-or-more"
process.env.KILN_CURSOR_SECRET = secret

const builds = Fields.builds
const order = OrderBy.complete(OrderBy.defaultOrder)

it.effect(
  "signs with KILN_CURSOR_SECRET when no layer sets a key, as a process given the same secret does",
  () =>
    Effect.gen(function* () {
      const key = yield* Cursor.CursorKey
      expect(key.configured).toBe(true)
      const cursor = yield* Cursor.encode(builds, order, Access.all, [1, "bld_x"])
      const decoded = yield* Cursor.decode(builds, order, Access.all, "after", cursor).pipe(
        Effect.provide(Cursor.layer(secret))
      )
      expect(decoded.values).toEqual([1, "bld_x"])
    })
)
