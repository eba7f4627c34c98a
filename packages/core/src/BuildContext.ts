/**
 * Build contexts are uncompressed tar streams (see `SourceStore.context`). A runner may need to change one
 * file on the way to the container engine — the Docker runner appends its labels to the Dockerfile as one
 * instruction — without holding the whole context in memory: `appendToFile` rewrites one entry as the
 * stream passes and leaves every other entry as it was.
 */
import { Result, Stream } from "effect"
import { type Event, type Header, read, rewrite, write } from "./internal/tar.ts"
import { SourceError } from "./SourceError.ts"

/** A file of this size is not a Dockerfile or anything else worth rewriting in memory. */
const maxRewrittenBytes = 4 * 1024 * 1024

const encoder = new TextEncoder()
const normalize = (path: string) => path.replace(/^(\.\/)+/, "").replace(/\/+$/, "")

const broken = (reason: string) =>
  new SourceError({ reason: "InvalidArchive", message: `the build context is not a valid tar: ${reason}` })

/** A regular file's entry, data and end. */
const file = (header: Header, data: Uint8Array): ReadonlyArray<Event> => [
  { _tag: "Entry", header: { ...header, type: "file", size: data.length } },
  { _tag: "Data", bytes: data },
  { _tag: "EntryEnd" }
]

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
    const wanted = normalize(path)
    let target: { readonly header: Header; readonly chunks: Array<Uint8Array>; size: number } | undefined
    let found = false
    /** Whether the current entry is left out: the root directory itself (`./`, as `tar -C dir .` writes it). */
    let dropped = false

    const rewriteEvent = (event: Event): Result.Result<ReadonlyArray<Event>, SourceError> => {
      switch (event._tag) {
        case "Entry": {
          const header = event.header
          const normalized = normalize(header.path)
          if (header.type === "file" && normalized === wanted) {
            target = { header, chunks: [], size: 0 }
            found = true
            return Result.succeed([])
          }
          dropped = normalized === ""
          if (dropped) return Result.succeed([])
          if (
            header.type !== "file" &&
            header.type !== "directory" &&
            header.type !== "symbolic link" &&
            header.type !== "hard link"
          )
            return Result.fail(
              new SourceError({
                reason: "InvalidArchive",
                message: `context entry ${JSON.stringify(header.path)} is not a file, directory or link`
              })
            )
          return Result.succeed([{ _tag: "Entry", header: { ...header, path: normalized } }])
        }
        case "Data":
          if (target === undefined) return Result.succeed(dropped ? [] : [event])
          target.size += event.bytes.length
          if (target.size > maxRewrittenBytes)
            return Result.fail(broken(`${JSON.stringify(path)} is too large to rewrite`))
          target.chunks.push(event.bytes)
          return Result.succeed([])
        case "EntryEnd": {
          if (target === undefined) return Result.succeed(dropped ? [] : [event])
          const { header, chunks } = target
          target = undefined
          return Result.succeed(file({ ...header, path: wanted }, edit(Buffer.concat(chunks))))
        }
      }
    }

    return write(
      rewrite(read(context, broken), rewriteEvent).pipe(
        Stream.concat(
          Stream.suspend(() =>
            Stream.fromIterable(
              found || missing === undefined
                ? []
                : file(
                    { path: wanted, type: "file", linkTarget: "", size: 0, mode: 0o644, mtime: 0 },
                    missing
                  )
            )
          )
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
  rewriteFile(context, path, (existing) => Buffer.concat([existing, encoder.encode(`\n${text}\n`)]))

/** The same context with the file at `path` holding `content`, whether or not it had that file before. */
export const replaceFile = <E>(
  context: Stream.Stream<Uint8Array, E>,
  path: string,
  content: Uint8Array
): Stream.Stream<Uint8Array, E | SourceError> => rewriteFile(context, path, () => content, content)
