/**
 * Byte streams into and out of local files, for the source store's scratch files and the directory
 * archive store. Disk failures are `Unavailable`, with a message that names no path.
 */
import { createReadStream } from "node:fs"
import { open } from "node:fs/promises"
import { Effect, Stream } from "effect"
import { SourceError } from "../SourceError.ts"

export const unavailable = (message: string) => (cause: unknown) =>
  new SourceError({ reason: "Unavailable", message, cause })

/** Reads of this size keep the per-chunk cost of a stream low on a 50 MB archive, and memory flat. */
const readChunkBytes = 256 * 1024

/** A file's bytes; `onError` decides what a failure to open or read it means. */
export const readFile = (
  file: string,
  onError: (cause: unknown) => SourceError
): Stream.Stream<Uint8Array, SourceError> =>
  Stream.suspend(() =>
    Stream.fromAsyncIterable(createReadStream(file, { highWaterMark: readChunkBytes }), onError)
  )

/**
 * Writes `body` to a new file (it must not exist), calling `inspect` on each chunk before it is written:
 * a failure there stops the write. With `sync`, the bytes are on disk when this succeeds.
 */
export const writeFile = <E>(
  body: Stream.Stream<Uint8Array, E>,
  file: string,
  options: {
    readonly inspect: (chunk: Uint8Array) => Effect.Effect<void, SourceError>
    readonly sync: boolean
    readonly failure: string
  }
): Effect.Effect<void, SourceError | E> =>
  Effect.gen(function* () {
    const failed = unavailable(options.failure)
    const handle = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => open(file, "wx"), catch: failed }),
      (handle) => Effect.promise(() => handle.close().catch(() => undefined))
    )
    yield* Stream.runForEach(body, (chunk) =>
      options.inspect(chunk).pipe(
        Effect.andThen(
          Effect.tryPromise({
            try: async () => {
              for (let offset = 0; offset < chunk.length; )
                offset += (await handle.write(chunk, offset, chunk.length - offset)).bytesWritten
            },
            catch: failed
          })
        )
      )
    )
    if (options.sync) yield* Effect.tryPromise({ try: () => handle.sync(), catch: failed })
  }).pipe(Effect.scoped)
