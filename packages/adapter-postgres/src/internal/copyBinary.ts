/**
 * PostgreSQL's binary COPY format (https://www.postgresql.org/docs/current/sql-copy.html, "Binary
 * Format"), for the archive store's chunks: rows of (uuid, int, bytea) written from a byte stream, and
 * the one bytea column of rows read back as a byte stream. Neither copies a chunk's bytes: a row's data
 * is the pieces it was given (or their slices), and a read hands on slices of what the server sent.
 */
import type { Writable } from "node:stream"
import { Effect, Stream } from "effect"

const signature = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1")
/** The signature, then flags and header-extension length, both 0. */
const header = Buffer.concat([signature, Buffer.alloc(8)])
const trailer = Buffer.from([0xff, 0xff])

/** A row's fields up to its data: 3 fields, the uuid, the index, the data's length. */
const rowHeader = (id: Buffer, idx: number, length: number) => {
  const bytes = Buffer.allocUnsafe(34)
  bytes.writeInt16BE(3, 0)
  bytes.writeInt32BE(16, 2)
  id.copy(bytes, 6)
  bytes.writeInt32BE(4, 22)
  bytes.writeInt32BE(idx, 26)
  bytes.writeInt32BE(length, 30)
  return bytes
}

/** Pieces shorter than this are copied together, so a body that trickles in does not make a row of crumbs. */
const smallPiece = 16 * 1024
const gatherBytes = 64 * 1024

/** The pieces of the row being assembled; the accumulator's own, changed in place. */
class Pending {
  readonly pieces: Array<Uint8Array> = []
  bytes = 0
  idx = 0
  private gather: Buffer | undefined
  private gathered = 0

  add(piece: Uint8Array) {
    this.bytes += piece.length
    if (piece.length >= smallPiece) {
      this.flush()
      this.pieces.push(piece)
      return
    }
    if (this.gather !== undefined && this.gathered + piece.length > this.gather.length) this.flush()
    this.gather ??= Buffer.allocUnsafe(gatherBytes)
    this.gather.set(piece, this.gathered)
    this.gathered += piece.length
  }

  /** Sends the next row: its header, then its first `length` bytes (never more than `bytes`). */
  row(out: Array<Uint8Array>, id: Buffer, length: number) {
    this.flush()
    out.push(rowHeader(id, this.idx++, length))
    this.bytes -= length
    let left = length
    while (left > 0) {
      const piece = this.pieces.shift()!
      if (piece.length <= left) {
        out.push(piece)
        left -= piece.length
      } else {
        out.push(piece.subarray(0, left))
        this.pieces.unshift(piece.subarray(left))
        left = 0
      }
    }
  }

  private flush() {
    if (this.gather === undefined || this.gathered === 0) return
    this.pieces.push(this.gather.subarray(0, this.gathered))
    this.gather = undefined
    this.gathered = 0
  }
}

/**
 * COPY data of rows `(id, 0, the first rowBytes bytes)`, `(id, 1, the next rowBytes)`, …, the last row
 * shorter; no row for an empty body. A row is sent once its bytes have arrived, so at most one row's
 * bytes are held.
 */
export const rowsOf =
  (id: string, rowBytes: number) =>
  <E>(body: Stream.Stream<Uint8Array, E>): Stream.Stream<Uint8Array, E> => {
    const idBytes = Buffer.from(id.replaceAll("-", ""), "hex")
    const rows = Stream.mapAccum(
      body,
      () => new Pending(),
      (pending, piece) => {
        const out: Array<Uint8Array> = []
        pending.add(piece)
        while (pending.bytes >= rowBytes) pending.row(out, idBytes, rowBytes)
        return [pending, out]
      },
      {
        onHalt: (pending) => {
          const out: Array<Uint8Array> = []
          if (pending.bytes > 0) pending.row(out, idBytes, pending.bytes)
          out.push(trailer)
          return out
        }
      }
    )
    return Stream.concat(Stream.succeed<Uint8Array>(header), rows)
  }

/** A COPY stream the parser cannot read: the server sent something other than one bytea per row. */
export class Malformed extends Error {}

type Phase =
  | { readonly _tag: "Header" }
  | { readonly _tag: "Extension"; readonly left: number }
  | { readonly _tag: "Row" }
  | { readonly _tag: "Length" }
  | { readonly _tag: "Data"; readonly left: number }
  | { readonly _tag: "End" }

interface Reading {
  readonly phase: Phase
  /** Bytes of a fixed-size field that arrived split across pieces. */
  readonly carry: Buffer
}

const fieldBytes = { Header: header.length, Row: 2, Length: 4 } as const

/**
 * The data of every row of a binary COPY of one `bytea` column, in order, as slices of the pieces the
 * server sent; fails with `Malformed` when the stream is not that.
 */
export const dataOf = <E>(copy: Stream.Stream<Uint8Array, E>): Stream.Stream<Uint8Array, E | Malformed> =>
  Stream.flatMap(
    Stream.mapAccum(
      copy,
      (): Reading => ({ phase: { _tag: "Header" }, carry: Buffer.alloc(0) }),
      (state, piece): readonly [Reading, ReadonlyArray<Uint8Array | Malformed>] => {
        const out: Array<Uint8Array | Malformed> = []
        let { phase, carry } = state
        let bytes = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength)
        while (bytes.length > 0) {
          if (phase._tag === "End") {
            out.push(new Malformed("bytes after the COPY trailer"))
            break
          }
          if (phase._tag === "Data" || phase._tag === "Extension") {
            const taken = Math.min(phase.left, bytes.length)
            if (phase._tag === "Data") out.push(bytes.subarray(0, taken))
            bytes = bytes.subarray(taken)
            const left = phase.left - taken
            phase = left > 0 ? { ...phase, left } : { _tag: "Row" }
            continue
          }
          const need = fieldBytes[phase._tag]
          const taken = Math.min(need - carry.length, bytes.length)
          carry = Buffer.concat([carry, bytes.subarray(0, taken)])
          bytes = bytes.subarray(taken)
          if (carry.length < need) break
          const field = carry
          carry = Buffer.alloc(0)
          if (phase._tag === "Header") {
            if (!field.subarray(0, signature.length).equals(signature)) {
              out.push(new Malformed("not a binary COPY stream"))
              break
            }
            const extension = field.readInt32BE(15)
            phase = extension > 0 ? { _tag: "Extension", left: extension } : { _tag: "Row" }
          } else if (phase._tag === "Row") {
            const fields = field.readInt16BE(0)
            if (fields === -1) phase = { _tag: "End" }
            else if (fields === 1) phase = { _tag: "Length" }
            else {
              out.push(new Malformed(`a row of ${fields} fields`))
              break
            }
          } else {
            const length = field.readInt32BE(0)
            if (length < 0) {
              out.push(new Malformed("a NULL chunk"))
              break
            }
            phase = length > 0 ? { _tag: "Data", left: length } : { _tag: "Row" }
          }
        }
        return [{ phase, carry }, out]
      },
      {
        onHalt: (state) => (state.phase._tag === "End" ? [] : [new Malformed("the COPY stream ended early")])
      }
    ),
    (item) => (item instanceof Malformed ? Stream.fail(item) : Stream.succeed(item))
  )

/** Waits until a writable wants more, or is gone. */
const drained = (sink: Writable) =>
  Effect.callback<void>((resume) => {
    const stop = () => {
      sink.off("drain", done)
      sink.off("close", done)
    }
    const done = () => {
      stop()
      resume(Effect.void)
    }
    sink.once("drain", done)
    sink.once("close", done)
    return Effect.sync(stop)
  })

/**
 * Writes a stream into a Node writable (a `COPY … FROM STDIN`), waiting whenever it asks to; once it is
 * destroyed, answers `gone`, which says how it ended.
 */
export const writeAll = <E, E2>(
  sink: Writable,
  data: Stream.Stream<Uint8Array, E>,
  gone: Effect.Effect<void, E2>
): Effect.Effect<void, E | E2> =>
  Stream.runForEach(data, (bytes) =>
    sink.destroyed ? gone : sink.write(bytes) ? Effect.void : drained(sink)
  )
