/**
 * The tar format, through `tar-stream`: `read` turns a tar's bytes into a stream of entries and their
 * data, `write` turns such a stream back into a tar. Both stream in flat memory, whatever the archive's
 * size, and neither judges paths: that is `tarArchive.ts`. A reader failure is never a crash: it is the
 * caller's error, built from a reason that says what is wrong.
 */
import { Effect, Result, Stream } from "effect"
import * as TarStream from "tar-stream"

export type EntryType =
  | "file"
  | "hard link"
  | "symbolic link"
  | "directory"
  | "character device"
  | "block device"
  | "fifo"

export interface Header {
  /** As written in the archive (pax `path`, GNU long name or ustar prefix and name), not normalized. */
  readonly path: string
  /** "unsupported" for a type flag tar-stream does not know (GNU sparse files, volume labels…). */
  readonly type: EntryType | "unsupported"
  readonly linkTarget: string
  /** Bytes of data that follow the header; always 0 but for files and unsupported entries. */
  readonly size: number
  readonly mode: number
  /** Seconds since the epoch. */
  readonly mtime: number
}

/** Each entry is an `Entry`, its data in zero or more `Data` slices, then `EntryEnd`. */
export type Event =
  | { readonly _tag: "Entry"; readonly header: Header }
  | { readonly _tag: "Data"; readonly bytes: Uint8Array }
  | { readonly _tag: "EntryEnd" }

/**
 * The entries of the tar in `tar`. What is not a well-formed tar fails with `malformed(reason)`; the
 * source's own failures pass through as they are. An empty input is not a tar; two zero blocks are.
 */
export const read = <E, M>(
  tar: Stream.Stream<Uint8Array, E>,
  malformed: (reason: string) => M
): Stream.Stream<Event, E | M> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const extract = TarStream.extract(extractOptions)
      const progress: Progress = { bytes: 0, entries: 0, error: undefined }
      // Kept for the reason: when the archive fails, an entry's data stream fails with a bare "destroyed".
      extract.on("error", (error) => {
        progress.error = error
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => extract.destroy(null)))
      const feed = Stream.runForEach(tar, (chunk) => {
        progress.bytes += chunk.length
        return written(extract, chunk)
      }).pipe(Effect.andThen(Effect.sync(() => extract.end(null))))
      return Stream.fromAsyncIterable(batches(extract, progress), (cause) =>
        malformed(reason(progress.error ?? cause, progress.entries))
      ).pipe(Stream.flattenIterable, Stream.mergeEffect(feed))
    })
  )

/**
 * The tar of `events`: ustar headers, with pax records for long or non-ASCII names; owner and group are
 * root, as in git archive. A directory's path gets its trailing slash here. Entries must carry exactly
 * `size` bytes of data; anything else is a defect of the caller.
 */
export const write = <E>(events: Stream.Stream<Event, E>): Stream.Stream<Uint8Array, E> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const pack = TarStream.pack()
      // An entry's failure reaches `feed` through the entry's callback; unheard, the event would throw.
      pack.on("error", () => {})
      yield* Effect.addFinalizer(() => Effect.sync(() => pack.destroy(null)))
      const flow = new Flow()
      let entry: { readonly sink: Sink; readonly done: Promise<Error | null | undefined> } | undefined
      const feed = Stream.runForEach(events, (event) => {
        switch (event._tag) {
          case "Entry": {
            let done!: (error: Error | null | undefined) => void
            const finished = new Promise<Error | null | undefined>((resolve) => (done = resolve))
            entry = { sink: pack.entry(packHeader(event.header), done), done: finished }
            return Effect.void
          }
          case "Data":
            return event.bytes.length === 0 ? Effect.void : written(entry!.sink, event.bytes)
          case "EntryEnd": {
            const { sink, done } = entry!
            entry = undefined
            sink.end(null)
            return Effect.promise(() => done).pipe(
              Effect.flatMap((error) => (error ? Effect.die(error) : flow.entered()))
            )
          }
        }
      }).pipe(Effect.andThen(Effect.sync(() => pack.finalize())))
      return Stream.fromAsyncIterable(drained(pack, flow), (cause) => cause).pipe(
        Stream.orDie,
        Stream.mergeEffect(feed)
      )
    })
  )

/**
 * `events` with each event replaced by what `f` makes of it (nothing, itself, other events), or failed
 * with `f`'s first failure. A batch at a time: a stream per event would cost more than the tar.
 */
export const rewrite = <E, F>(
  events: Stream.Stream<Event, E>,
  f: (event: Event) => Result.Result<ReadonlyArray<Event>, F>
): Stream.Stream<Event, E | F> =>
  events.pipe(
    Stream.chunks,
    Stream.mapEffect((batch) => {
      const out: Array<Event> = []
      for (const event of batch) {
        const next = f(event)
        if (Result.isFailure(next)) return Effect.fail(next.failure)
        for (const rewritten of next.success) out.push(rewritten)
      }
      return Effect.succeed(out)
    }),
    Stream.flattenIterable
  )

/**
 * Pre-POSIX (v7) headers have no magic; the checksum still guards them, and GNU tar and Go read them.
 * tar-stream's types leave this option out.
 */
const extractOptions: NonNullable<Parameters<typeof TarStream.extract>[0]> & {
  readonly allowUnknownFormat: boolean
} = { allowUnknownFormat: true }

/** Writes `chunk`, then waits until the stream takes more (or is destroyed, which its reader reports). */
const written = (stream: TarStream.Extract | Sink, chunk: Uint8Array) =>
  Effect.callback<void>((resume) => {
    if (stream.write(chunk)) return resume(Effect.void)
    const go = () => {
      stream.off("drain", go)
      stream.off("close", go)
      resume(Effect.void)
    }
    stream.on("drain", go)
    stream.on("close", go)
    return Effect.sync(() => {
      stream.off("drain", go)
      stream.off("close", go)
    })
  })

/** Where an entry's data goes; tar-stream does not export its name. */
type Sink = ReturnType<TarStream.Pack["entry"]>

/** How far `read` got: what the reason for a failure depends on. */
interface Progress {
  bytes: number
  entries: number
  error: unknown
}

/** A reason of the reader's own, not one of tar-stream's errors. */
class Malformed extends Error {}

const types: Partial<Record<string, EntryType>> = {
  file: "file",
  "contiguous-file": "file",
  link: "hard link",
  symlink: "symbolic link",
  directory: "directory",
  "character-device": "character device",
  "block-device": "block device",
  fifo: "fifo"
}

/**
 * A pull through the stream costs more than reading an event, so events go out in batches of about this
 * many bytes of data or this many events.
 */
const batchBytes = 64 * 1024
const batchEvents = 256

/**
 * The events of `extract`, in batches; each entry's data is read to its end before the next header is
 * parsed, and tar-stream reads no further ahead than its buffers, so a batch is all that is held.
 */
async function* batches(
  extract: TarStream.Extract,
  progress: Progress
): AsyncGenerator<ReadonlyArray<Event>> {
  let batch: Array<Event> = []
  let bytes = 0
  const full = () => bytes >= batchBytes || batch.length >= batchEvents
  const take = () => {
    const taken = batch
    batch = []
    bytes = 0
    return taken
  }
  try {
    for await (const entry of extract) {
      const header = kilnHeader(entry.header)
      progress.entries++
      batch.push({ _tag: "Entry", header })
      if (header.size > 0)
        for await (const data of entry) {
          // Buffers, which streamx's types leave unknown.
          const chunk = data as Uint8Array
          batch.push({ _tag: "Data", bytes: chunk })
          bytes += chunk.length
          if (full()) yield take()
        }
      batch.push({ _tag: "EntryEnd" })
      if (full()) yield take()
    }
  } catch (error) {
    // What was read before the failure goes first: a rule may refuse an earlier entry.
    if (batch.length > 0) yield take()
    throw error
  }
  if (progress.bytes === 0) throw new Malformed("it is not a tar archive")
  if (batch.length > 0) yield take()
}

const kilnHeader = (header: TarStream.Header): Header => {
  // tar-stream's type is null for a type flag it does not know.
  const type = types[header.type] ?? "unsupported"
  // tar-stream reads a directory's size as no data, as GNU tar and Go do, but reads the data of a link,
  // device or fifo that claims some, where those skip none: the rest would be read two ways.
  if (type !== "file" && type !== "directory" && type !== "unsupported" && header.size > 0)
    throw new Malformed(`the tar archive has a ${type} with data`)
  const pax = typeof header.pax === "object" && header.pax !== null ? Object.keys(header.pax) : []
  if (pax.some((key) => key.startsWith("GNU.sparse.")))
    throw new Malformed("the tar archive has a sparse file, which is not supported")
  const linkTarget = header.linkname ?? ""
  // tar-stream decodes names with replacement characters: one means the bytes were not UTF-8 (or, rarely,
  // that a name holds U+FFFD itself, which is refused too rather than told apart).
  if (header.name.includes("\uFFFD") || linkTarget.includes("\uFFFD"))
    throw new Malformed("the tar archive has an entry whose path is not valid UTF-8")
  // tar-stream reads a number it cannot parse as NaN, or null in base 256.
  if (!isCount(header.size)) throw new Malformed("the tar archive has a header with an invalid size")
  const mtime = header.mtime.getTime() / 1000
  if (!isCount(header.mode) || !isCount(mtime))
    throw new Malformed("the tar archive has a header with an invalid number")
  return {
    path: header.name,
    type,
    linkTarget,
    size: type === "directory" ? 0 : header.size,
    mode: header.mode,
    mtime
  }
}

const isCount = (n: number | null) => n !== null && Number.isSafeInteger(n) && n >= 0

/** What a reader failure means, in words; tar-stream's own messages are not shown. */
const reason = (cause: unknown, entries: number): string => {
  if (cause instanceof Malformed) return cause.message
  const message = cause instanceof Error ? cause.message : ""
  // Before the first entry, a bad checksum or too few bytes mean it was never a tar.
  if (message.startsWith("Invalid tar header. Maybe"))
    return entries === 0 ? "it is not a tar archive" : "the tar archive has a corrupt header"
  if (message === "Unexpected end of data")
    return entries === 0 ? "it is not a tar archive" : "the tar archive is truncated"
  if (message === "Header exceeds max size") return "the tar archive has an extended header over 4 MiB"
  if (message === "Invalid header") return "the tar archive has a header with an invalid size"
  if (message.includes("null byte")) return "the tar archive has a path with a NUL byte"
  return "the tar archive is malformed"
}

/** tar-stream's name of each type, and the type's bits in a `stat` mode. */
const packTypes: Record<EntryType, readonly [NonNullable<TarStream.Header["type"]>, number]> = {
  file: ["file", 0o100000],
  "hard link": ["link", 0o100000],
  "symbolic link": ["symlink", 0o120000],
  directory: ["directory", 0o040000],
  "character device": ["character-device", 0o020000],
  "block device": ["block-device", 0o060000],
  fifo: ["fifo", 0o010000]
}

const packHeader = (header: Header): Parameters<TarStream.Pack["entry"]>[0] => {
  if (header.type === "unsupported") throw new Error("an unsupported entry cannot be written")
  const [type, typeBits] = packTypes[header.type]
  return {
    name: header.type === "directory" && !header.path.endsWith("/") ? `${header.path}/` : header.path,
    type,
    linkname: header.linkTarget,
    size: header.size,
    // A `stat` mode, as tar-fs passes it: tar-stream writes its permission bits, and would read a bare 0
    // as "none given" and write 644 or 755 instead.
    mode: typeBits | (header.mode & 0o7777),
    mtime: new Date(header.mtime * 1000),
    uname: "root",
    gname: "root"
  }
}

/**
 * How far the writer may run ahead of its reader. tar-stream's pack holds back a file's data until its
 * reader takes some, but queues the headers of entries without data however many there are: the writer
 * waits once this many entries went in since the pack was last read empty.
 */
const maxEntriesAhead = 64

class Flow {
  #ahead = 0
  #waiting: (() => void) | undefined

  /** After an entry went into the pack. */
  entered(): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      if (++this.#ahead < maxEntriesAhead) return resume(Effect.void)
      this.#waiting = () => resume(Effect.void)
    })
  }

  /** The pack was read empty: everything that went in so far is out. */
  emptied() {
    this.#ahead = 0
    const waiting = this.#waiting
    this.#waiting = undefined
    waiting?.()
  }
}

/** Everything `pack` holds each time it is read, as one chunk, until it ends. */
async function* drained(pack: TarStream.Pack, flow: Flow): AsyncGenerator<Uint8Array> {
  let ended = false
  pack.on("end", () => {
    ended = true
  })
  while (true) {
    const chunks: Array<Uint8Array> = []
    // Buffers, which streamx's types leave unknown.
    for (let chunk = pack.read(); chunk !== null; chunk = pack.read()) chunks.push(chunk as Uint8Array)
    flow.emptied()
    if (chunks.length > 0) yield chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
    else if (ended) return
    else if (pack.destroyed) throw new Error("the tar writer was destroyed")
    else
      await new Promise<void>((resolve) => {
        const go = () => {
          pack.off("readable", go)
          pack.off("end", go)
          pack.off("close", go)
          resolve()
        }
        pack.on("readable", go)
        pack.on("end", go)
        pack.on("close", go)
      })
  }
}
