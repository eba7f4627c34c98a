/**
 * The log the fan-out benchmark streams, shared by its two servers: line `n`'s text, one timestamp for all
 * (so Kiln's frames and the raw server's are the same bytes), the batches lines are written in, and the
 * frames Kiln's canonical stream sends for them.
 */

import { LogCursor } from "@kiln/core"
import { Api } from "@kiln/http"
import { DateTime, Schema } from "effect"

export const at = DateTime.makeUnsafe(1_767_225_600_000)

/** Lines are written as a build's would be: as many at once as the engine's writer takes (500). */
export const batchLines = 500

export const lineText = (n: number) => `#${n} compiling src/module-${n % 997}.ts ... done in ${n % 89} ms`

const encode = Schema.encodeSync(Schema.fromJsonString(Schema.toCodecJson(Api.LogStreamMessage)))

/** Line `n`'s frame on the canonical stream. */
export const lineFrame = (n: number) =>
  encode({
    type: "line",
    seq: n,
    ts: at,
    stream: "stdout",
    step: null,
    text: lineText(n),
    cursor: LogCursor.encode(n)
  })

export const statusFrame = (status: "running" | "completed") => encode({ type: "status", status })

export const endFrame = (seq: number) =>
  encode({ type: "end", status: "completed", cursor: LogCursor.encode(seq) })
