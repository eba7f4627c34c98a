/**
 * Log cursors: the last `seq` a reader has seen, as an opaque string. The REST log page returns one and
 * the WebSocket stream accepts the same, resuming with no gap and no duplicate. A log cursor says nothing
 * a reader may not know, so it is not signed; a build's log is only readable with access to the build.
 */
import { Result } from "effect"
import { InvalidCursor } from "./Cursor.ts"

export const encode = (seq: number): string => Buffer.from(`log:${seq}`).toString("base64url")

/** The seq a cursor names; an absent cursor is the start of the log. */
export const decode = (cursor: string | undefined): Result.Result<number, InvalidCursor> => {
  if (cursor === undefined || cursor === "") return Result.succeed(0)
  const text = /^[A-Za-z0-9_-]{1,40}$/.test(cursor) ? Buffer.from(cursor, "base64url").toString("utf8") : ""
  const match = /^log:(\d{1,15})$/.exec(text)
  return match === null
    ? Result.fail(new InvalidCursor({ message: "cursor: not a log cursor this API issued" }))
    : Result.succeed(Number(match[1]))
}
