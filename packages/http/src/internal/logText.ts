/**
 * A build's log as plain text, each line's text and a newline: `GET /api/builds/{id}/logs?format=text` and
 * the deployments dialect's `GET …/builds/{build_id}/logs`. The lines are read from storage a page at a
 * time as the client takes them, so a log of any length costs a page or two of memory.
 */
import type { Access, Id, LogLine, Storage } from "@kiln/core"
import { Effect, Option, Stream } from "effect"
import { HttpServerResponse } from "effect/http"

const pageSize = 1000

const encoder = new TextEncoder()

/**
 * The lines after `afterSeq`, at most `maxLines` of them. The first page is read before answering: a
 * missing build fails here rather than cutting a body short, `empty` tells an empty log and `expiredAt` one
 * that retention expired. A page is read before the one in hand is written, so the body ends without one
 * read too many.
 */
export const plainText = (
  storage: Storage.StorageShape,
  access: Access.Access,
  buildId: Id.BuildId,
  afterSeq: number,
  maxLines = Number.POSITIVE_INFINITY
) => {
  const read = (after: number, left: number) =>
    Effect.map(storage.readLogs(access, buildId, after, Math.min(pageSize, left)), (page) => ({
      lines: page.lines,
      left: left - page.lines.length,
      expiredAt: page.expiredAt
    }))
  const text = (lines: ReadonlyArray<LogLine.LogLine>) =>
    lines.length === 0 ? [] : [encoder.encode(lines.map((line) => `${line.text}\n`).join(""))]
  return Effect.map(read(afterSeq, maxLines), (first) => ({
    empty: first.lines.length === 0,
    expiredAt: first.expiredAt,
    response: HttpServerResponse.stream(
      Stream.paginate(first, (page) => {
        const last = page.lines.at(-1)
        return page.lines.length < pageSize || page.left === 0 || last === undefined
          ? Effect.succeed([text(page.lines), Option.none()] as const)
          : Effect.map(
              Effect.orDie(read(last.seq, page.left)),
              (next) => [text(page.lines), Option.some(next)] as const
            )
      }),
      { contentType: "text/plain; charset=utf-8" }
    )
  }))
}
