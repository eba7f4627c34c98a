/**
 * Build contexts are uncompressed tar streams (see `SourceStore.context`). A runner may need to change one
 * file on the way to the container engine — the Docker runner appends its labels to the Dockerfile as one
 * instruction — without holding the whole context in memory: `appendToFile` rewrites one entry as the
 * stream passes and leaves every other entry as it was.
 */
import { Effect, Result, Stream } from "effect"
import {
  encodeHeader,
  endOfArchive,
  type Header,
  padding,
  TarReader,
  type WriteHeader
} from "./internal/tar.ts"
import { SourceError } from "./SourceError.ts"

/** A file of this size is not a Dockerfile or anything else worth rewriting in memory. */
const maxRewrittenBytes = 4 * 1024 * 1024

const encoder = new TextEncoder()
const normalize = (path: string) => path.replace(/^(\.\/)+/, "").replace(/\/+$/, "")

const concat = (chunks: ReadonlyArray<Uint8Array>, extra: Uint8Array): Uint8Array => {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, extra.length))
  let at = 0
  for (const chunk of chunks) {
    out.set(chunk, at)
    at += chunk.length
  }
  out.set(extra, at)
  return out
}

const writable = (header: Header): Result.Result<WriteHeader, SourceError> =>
  header.type === "file" ||
  header.type === "directory" ||
  header.type === "symbolic link" ||
  header.type === "hard link"
    ? Result.succeed({ ...header, path: normalize(header.path), type: header.type })
    : Result.fail(
        new SourceError({
          reason: "InvalidArchive",
          message: `context entry ${JSON.stringify(header.path)} is not a file, directory or link`
        })
      )

/**
 * The context with the regular file at `path` (relative to the context root) rewritten by `edit`, which
 * gets its bytes; when there is no such file, `missing` (if given) is added at the end as one.
 */
const rewriteFile = <E>(
  context: Stream.Stream<Uint8Array, E>,
  path: string,
  edit: (existing: Uint8Array) => Uint8Array,
  missing?: Uint8Array
): Stream.Stream<Uint8Array, E | SourceError> =>
  Stream.suspend(() => {
    const reader = new TarReader()
    const wanted = normalize(path)
    let target: { header: Header; chunks: Array<Uint8Array>; size: number } | undefined
    let found = false
    let size = 0
    const broken = (reason: string) =>
      new SourceError({
        reason: "InvalidArchive",
        message: `the build context is not a valid tar: ${reason}`
      })
    const entry = (header: WriteHeader, data: Uint8Array) => [
      encodeHeader({ ...header, type: "file", size: data.length }),
      data,
      padding(data.length)
    ]

    const rewrite = (chunk: Uint8Array): Result.Result<ReadonlyArray<Uint8Array>, SourceError> => {
      const events = reader.push(chunk)
      if (Result.isFailure(events)) return Result.fail(broken(events.failure))
      const out: Array<Uint8Array> = []
      for (const event of events.success) {
        switch (event._tag) {
          case "Entry": {
            if (event.header.type === "file" && normalize(event.header.path) === wanted) {
              target = { header: event.header, chunks: [], size: 0 }
              found = true
              continue
            }
            // The root directory itself (`./`, as `tar -C dir .` writes it) has no path once normalized.
            if (normalize(event.header.path) === "") {
              size = 0
              continue
            }
            const header = writable(event.header)
            if (Result.isFailure(header)) return Result.fail(header.failure)
            out.push(encodeHeader(header.success))
            size = event.header.size
            break
          }
          case "Data":
            if (target === undefined) out.push(event.bytes)
            else {
              target.size += event.bytes.length
              if (target.size > maxRewrittenBytes)
                return Result.fail(broken(`${JSON.stringify(path)} is too large to rewrite`))
              target.chunks.push(event.bytes.slice())
            }
            break
          case "EntryEnd":
            if (target === undefined) out.push(padding(size))
            else {
              out.push(
                ...entry({ ...target.header, type: "file" }, edit(concat(target.chunks, new Uint8Array())))
              )
              target = undefined
            }
            break
        }
      }
      return Result.succeed(out)
    }

    return context.pipe(
      Stream.mapEffect((chunk) => Effect.fromResult(rewrite(chunk))),
      Stream.flatMap((chunks) => Stream.fromIterable(chunks)),
      Stream.concat(
        Stream.fromIterableEffect(
          Effect.suspend(() => {
            const end = reader.end()
            if (Result.isFailure(end)) return Effect.fail(broken(end.failure))
            const added =
              found || missing === undefined
                ? []
                : entry(
                    { path: wanted, type: "file", linkTarget: "", size: 0, mode: 0o644, mtime: 0 },
                    missing
                  )
            return Effect.succeed([...added, endOfArchive()])
          })
        )
      )
    )
  })

/**
 * The same context with `text` appended, on a line of its own, to the regular file at `path` (relative
 * to the context root). A context without that file passes through unchanged.
 */
export const appendToFile = <E>(
  context: Stream.Stream<Uint8Array, E>,
  path: string,
  text: string
): Stream.Stream<Uint8Array, E | SourceError> =>
  rewriteFile(context, path, (existing) => concat([existing], encoder.encode(`\n${text}\n`)))

/** The same context with the file at `path` holding `content`, whether or not it had that file before. */
export const replaceFile = <E>(
  context: Stream.Stream<Uint8Array, E>,
  path: string,
  content: Uint8Array
): Stream.Stream<Uint8Array, E | SourceError> => rewriteFile(context, path, () => content, content)
