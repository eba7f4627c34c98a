/**
 * The tar format: a streaming reader and a header writer for ustar with the POSIX pax and GNU long-name
 * extensions, which is what GNU tar, bsdtar, git archive and Go's archive/tar write. Pure and
 * synchronous, so any stream can drive it. What it does not understand is an error, never a guess.
 */
import { Result } from "effect"

export type EntryType =
  | "file"
  | "hard link"
  | "symbolic link"
  | "directory"
  | "character device"
  | "block device"
  | "fifo"
  | "unsupported"

export interface Header {
  /** As written in the archive (pax `path`, GNU long name or ustar prefix and name), not normalized. */
  readonly path: string
  readonly type: EntryType
  /** The raw type flag, for messages about unsupported entries. */
  readonly typeflag: string
  readonly linkTarget: string
  /** Bytes of data that follow the header; always 0 for links, directories and devices. */
  readonly size: number
  readonly mode: number
  readonly mtime: number
}

/** Each entry is an `Entry`, its data in zero or more `Data` slices of the input, then `EntryEnd`. */
export type Event =
  | { readonly _tag: "Entry"; readonly header: Header }
  | { readonly _tag: "Data"; readonly bytes: Uint8Array }
  | { readonly _tag: "EntryEnd" }

const BLOCK = 512
/** Extended headers are buffered whole; real ones are a few hundred bytes. */
const MAX_METADATA_BYTES = 1024 * 1024
const MAX_OCTAL_SIZE = 0o77777777777

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
const encoder = new TextEncoder()

const types: Record<string, EntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hard link",
  "2": "symbolic link",
  "3": "character device",
  "4": "block device",
  "5": "directory",
  "6": "fifo"
}

/** As in Go's archive/tar: these entries carry no data whatever their size field says. */
const headerOnly = new Set<EntryType>([
  "hard link",
  "symbolic link",
  "character device",
  "block device",
  "directory",
  "fifo"
])

/** What extended headers set for the next entry. */
interface Pending {
  path: string | undefined
  linkTarget: string | undefined
  size: number | undefined
}

const nothingPending = (): Pending => ({ path: undefined, linkTarget: undefined, size: undefined })
const hasPending = (pending: Pending) =>
  pending.path !== undefined || pending.linkTarget !== undefined || pending.size !== undefined

type Mode =
  | { readonly _tag: "Header" }
  | { readonly _tag: "Data"; remaining: number; readonly padding: number }
  | { readonly _tag: "Metadata"; readonly typeflag: string; readonly bytes: Uint8Array; filled: number }
  | { readonly _tag: "Skip"; remaining: number }
  | { readonly _tag: "Ended" }

const padded = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK

export class TarReader {
  #mode: Mode = { _tag: "Header" }
  readonly #block = new Uint8Array(BLOCK)
  #filled = 0
  #pending: Pending = nothingPending()
  #headers = 0

  /** The events in `chunk`, or why the bytes so far are not a tar archive. Bytes after the end marker are ignored. */
  push(chunk: Uint8Array): Result.Result<ReadonlyArray<Event>, string> {
    const events: Array<Event> = []
    let offset = 0
    while (offset < chunk.length) {
      const mode = this.#mode
      const available = chunk.length - offset
      switch (mode._tag) {
        case "Ended":
          return Result.succeed(events)
        case "Header": {
          const n = Math.min(BLOCK - this.#filled, available)
          this.#block.set(chunk.subarray(offset, offset + n), this.#filled)
          this.#filled += n
          offset += n
          if (this.#filled === BLOCK) {
            this.#filled = 0
            const problem = this.#header(events)
            if (problem !== undefined) return Result.fail(problem)
          }
          break
        }
        case "Data": {
          const n = Math.min(mode.remaining, available)
          events.push({ _tag: "Data", bytes: chunk.subarray(offset, offset + n) })
          mode.remaining -= n
          offset += n
          if (mode.remaining === 0) {
            events.push({ _tag: "EntryEnd" })
            this.#skip(mode.padding)
          }
          break
        }
        case "Metadata": {
          const n = Math.min(mode.bytes.length - mode.filled, available)
          mode.bytes.set(chunk.subarray(offset, offset + n), mode.filled)
          mode.filled += n
          offset += n
          if (mode.filled === mode.bytes.length) {
            const problem = this.#metadata(mode.typeflag, mode.bytes)
            if (problem !== undefined) return Result.fail(problem)
            this.#skip(padded(mode.bytes.length))
          }
          break
        }
        case "Skip": {
          const n = Math.min(mode.remaining, available)
          mode.remaining -= n
          offset += n
          if (mode.remaining === 0) this.#mode = { _tag: "Header" }
          break
        }
      }
    }
    return Result.succeed(events)
  }

  /** Whether the input ended where an archive may end: at the end marker, or between entries. */
  end(): Result.Result<void, string> {
    if (this.#mode._tag === "Ended") return Result.succeed(undefined)
    if (this.#headers === 0) return Result.fail("it is not a tar archive")
    if (this.#mode._tag !== "Header" || this.#filled !== 0 || hasPending(this.#pending))
      return Result.fail("the tar archive is truncated")
    return Result.succeed(undefined)
  }

  #skip(bytes: number) {
    this.#mode = bytes === 0 ? { _tag: "Header" } : { _tag: "Skip", remaining: bytes }
  }

  #header(events: Array<Event>): string | undefined {
    const block = this.#block
    if (block.every((byte) => byte === 0)) {
      if (hasPending(this.#pending)) return "the tar archive ends after an extended header"
      this.#mode = { _tag: "Ended" }
      return undefined
    }
    if (!checksumMatches(block))
      return this.#headers === 0 ? "it is not a tar archive" : "the tar archive has a corrupt header"
    this.#headers++
    const typeflag = String.fromCharCode(block[156]!)
    const metadata = typeflag === "x" || typeflag === "g" || typeflag === "L" || typeflag === "K"
    const size = (metadata ? undefined : this.#pending.size) ?? readNumber(block, 124, 12)
    if (size === undefined) return "the tar archive has a header with an invalid size"
    if (metadata) {
      if (size > MAX_METADATA_BYTES) return "the tar archive has an extended header over 1 MiB"
      this.#mode = { _tag: "Metadata", typeflag, bytes: new Uint8Array(size), filled: 0 }
      if (size === 0) return this.#metadata(typeflag, new Uint8Array(0))
      return undefined
    }
    const pending = this.#pending
    this.#pending = nothingPending()
    const ustar = readString(block, 257, 6) === "ustar" && readString(block, 263, 2) === "00"
    // The header's own fields only count where no extended header replaced them.
    const path = pending.path ?? ustarPath(block, ustar)
    const linkTarget = pending.linkTarget ?? readString(block, 157, 100)
    const mode = readNumber(block, 100, 8)
    const mtime = readNumber(block, 136, 12)
    if (path === undefined || linkTarget === undefined)
      return "the tar archive has an entry whose path is not valid UTF-8"
    if (mode === undefined || mtime === undefined)
      return "the tar archive has a header with an invalid number"
    const type = types[typeflag] ?? "unsupported"
    const header: Header = {
      path,
      type,
      typeflag,
      linkTarget,
      size: headerOnly.has(type) ? 0 : size,
      mode,
      mtime
    }
    events.push({ _tag: "Entry", header })
    if (header.size === 0) {
      events.push({ _tag: "EntryEnd" })
      this.#mode = { _tag: "Header" }
    } else {
      this.#mode = { _tag: "Data", remaining: header.size, padding: padded(header.size) }
    }
    return undefined
  }

  #metadata(typeflag: string, bytes: Uint8Array): string | undefined {
    if (typeflag === "L" || typeflag === "K") {
      const end = bytes.indexOf(0)
      const value = decode(end === -1 ? bytes : bytes.subarray(0, end))
      if (value === undefined) return "the tar archive has an entry whose path is not valid UTF-8"
      if (typeflag === "L") this.#pending.path = value
      else this.#pending.linkTarget = value
      return undefined
    }
    const records = readPax(bytes)
    if (records === undefined) return "the tar archive has a malformed pax header"
    // A global header's values would apply to every later entry; none that matter here is honoured, so
    // it is read for its format only.
    if (typeflag === "g") return undefined
    for (const [key, value] of records) {
      if (key.startsWith("GNU.sparse.")) return "the tar archive has a sparse file, which is not supported"
      // An empty value restores the ustar header's own field.
      if (key === "path") this.#pending.path = value === "" ? undefined : value
      else if (key === "linkpath") this.#pending.linkTarget = value === "" ? undefined : value
      else if (key === "size") {
        if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value)))
          return "the tar archive has a pax header with an invalid size"
        this.#pending.size = Number(value)
      }
    }
    return undefined
  }
}

const decode = (bytes: Uint8Array): string | undefined => {
  try {
    return utf8.decode(bytes)
  } catch {
    return undefined
  }
}

/** A NUL-terminated string field. */
const readString = (block: Uint8Array, offset: number, length: number): string | undefined => {
  const field = block.subarray(offset, offset + length)
  const end = field.indexOf(0)
  return decode(end === -1 ? field : field.subarray(0, end))
}

/** The name field, after the prefix field in POSIX ustar (GNU tar keeps other data there). */
const ustarPath = (block: Uint8Array, ustar: boolean): string | undefined => {
  const name = readString(block, 0, 100)
  const prefix = ustar ? readString(block, 345, 155) : ""
  if (name === undefined || prefix === undefined) return undefined
  return prefix === "" ? name : `${prefix}/${name}`
}

/** An octal field, or GNU's base-256 form for values too large for octal. */
const readNumber = (block: Uint8Array, offset: number, length: number): number | undefined => {
  const field = block.subarray(offset, offset + length)
  if (field[0]! & 0x80) {
    if (field[0] !== 0x80) return undefined
    let value = 0
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!
    return Number.isSafeInteger(value) ? value : undefined
  }
  const text = String.fromCharCode(...field)
    .replace(/[\0 ]+$/, "")
    .replace(/^ +/, "")
  if (text === "") return 0
  return /^[0-7]+$/.test(text) ? Number.parseInt(text, 8) : undefined
}

/** The sum of the header's bytes with the checksum field read as spaces; old tars summed signed bytes. */
const checksumMatches = (block: Uint8Array): boolean => {
  const stored = readNumber(block, 148, 8)
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!
    unsigned += byte
    signed += byte > 127 ? byte - 256 : byte
  }
  return stored === unsigned || stored === signed
}

/** pax records: `<length> <key>=<value>\n`, where the length counts the whole record. */
const readPax = (bytes: Uint8Array): Array<readonly [string, string]> | undefined => {
  const records: Array<readonly [string, string]> = []
  let offset = 0
  while (offset < bytes.length) {
    // Some writers pad the header with NULs after the last record.
    if (bytes[offset] === 0) break
    const space = bytes.indexOf(0x20, offset)
    if (space === -1 || space - offset > 20) return undefined
    const lengthText = String.fromCharCode(...bytes.subarray(offset, space))
    if (!/^[0-9]+$/.test(lengthText)) return undefined
    const end = offset + Number(lengthText)
    if (end <= space + 1 || end > bytes.length || bytes[end - 1] !== 0x0a) return undefined
    const record = decode(bytes.subarray(space + 1, end - 1))
    const equals = record?.indexOf("=") ?? -1
    if (record === undefined || equals <= 0) return undefined
    records.push([record.slice(0, equals), record.slice(equals + 1)])
    offset = end
  }
  return records
}

export interface WriteHeader {
  readonly path: string
  readonly type: "file" | "directory" | "symbolic link" | "hard link"
  readonly linkTarget: string
  readonly size: number
  readonly mode: number
  readonly mtime: number
}

const typeflags: Record<WriteHeader["type"], string> = {
  file: "0",
  directory: "5",
  "symbolic link": "2",
  "hard link": "1"
}

/**
 * The header block of an entry, preceded by a pax header when the path or link target does not fit
 * ustar's 100 bytes or the size its 11 octal digits. Owner and group are always root, as in git archive.
 */
export const encodeHeader = (entry: WriteHeader): Uint8Array => {
  const path = entry.type === "directory" ? `${entry.path}/` : entry.path
  const pathBytes = encoder.encode(path)
  const linkBytes = encoder.encode(entry.linkTarget)
  const pax: Array<readonly [string, string]> = []
  if (pathBytes.length > 100) pax.push(["path", path])
  if (linkBytes.length > 100) pax.push(["linkpath", entry.linkTarget])
  if (entry.size > MAX_OCTAL_SIZE) pax.push(["size", String(entry.size)])
  const header = ustarBlock({
    name: truncate(pathBytes, 100),
    typeflag: typeflags[entry.type],
    linkname: truncate(linkBytes, 100),
    size: entry.size > MAX_OCTAL_SIZE ? 0 : entry.size,
    mode: entry.mode & 0o7777,
    mtime: Math.min(Math.max(Math.floor(entry.mtime), 0), MAX_OCTAL_SIZE)
  })
  if (pax.length === 0) return header
  const records = encoder.encode(pax.map(([key, value]) => paxRecord(key, value)).join(""))
  const paxHeader = ustarBlock({
    name: encoder.encode("././@PaxHeader"),
    typeflag: "x",
    linkname: new Uint8Array(0),
    size: records.length,
    mode: 0o644,
    mtime: 0
  })
  const out = new Uint8Array(BLOCK + records.length + padded(records.length) + BLOCK)
  out.set(paxHeader, 0)
  out.set(records, BLOCK)
  out.set(header, out.length - BLOCK)
  return out
}

/** The zeros that fill an entry's data of `size` bytes to a whole block. */
export const padding = (size: number): Uint8Array => new Uint8Array(padded(size))

/** Two zero blocks end an archive. */
export const endOfArchive = (): Uint8Array => new Uint8Array(2 * BLOCK)

/** At most `length` bytes, cut between characters: what readers that ignore pax headers see. */
const truncate = (bytes: Uint8Array, length: number): Uint8Array => {
  if (bytes.length <= length) return bytes
  let end = length
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--
  return bytes.subarray(0, end)
}

const paxRecord = (key: string, value: string): string => {
  const rest = encoder.encode(` ${key}=${value}\n`).length
  let length = rest + String(rest).length
  if (String(length).length + rest !== length) length = rest + String(length).length
  return `${length} ${key}=${value}\n`
}

const ustarBlock = (fields: {
  readonly name: Uint8Array
  readonly typeflag: string
  readonly linkname: Uint8Array
  readonly size: number
  readonly mode: number
  readonly mtime: number
}): Uint8Array => {
  const block = new Uint8Array(BLOCK)
  const octal = (offset: number, length: number, value: number) =>
    block.set(encoder.encode(`${value.toString(8).padStart(length - 1, "0")}\0`), offset)
  block.set(fields.name, 0)
  octal(100, 8, fields.mode)
  octal(108, 8, 0)
  octal(116, 8, 0)
  octal(124, 12, fields.size)
  octal(136, 12, fields.mtime)
  block[156] = fields.typeflag.charCodeAt(0)
  block.set(fields.linkname, 157)
  block.set(encoder.encode("ustar\u000000"), 257)
  block.set(encoder.encode("root"), 265)
  block.set(encoder.encode("root"), 297)
  block.fill(0x20, 148, 156)
  const sum = block.reduce((total, byte) => total + byte, 0)
  block.set(encoder.encode(`${sum.toString(8).padStart(6, "0")}\0 `), 148)
  return block
}
