/**
 * Text messages laid out once as WebSocket frames (RFC 6455 §5.2: final, unmasked text frames, as a server
 * sends them), one after another in one buffer. A page of a build's log is framed once and written as a
 * slice to every follower of the build: one write per part of a page, where sending each message through
 * the WebSocket library costs a header, a frame and a write request per message per follower.
 */
import type { Duplex } from "node:stream"

export interface Frames {
  readonly bytes: Buffer
  /** Where each message's frame ends in `bytes`: a message with nothing to send has a frame of no bytes. */
  readonly ends: ReadonlyArray<number>
}

/** FIN with the text opcode. */
const finalText = 0x81

const headerLength = (payload: number) => (payload < 126 ? 2 : payload < 65_536 ? 4 : 10)

const writeHeader = (bytes: Buffer, at: number, payload: number): number => {
  bytes[at] = finalText
  if (payload < 126) {
    bytes[at + 1] = payload
    return at + 2
  }
  if (payload < 65_536) {
    bytes[at + 1] = 126
    bytes.writeUInt16BE(payload, at + 2)
    return at + 4
  }
  bytes[at + 1] = 127
  bytes.writeBigUInt64BE(BigInt(payload), at + 2)
  return at + 10
}

export const make = (texts: ReadonlyArray<string | undefined>): Frames => {
  const lengths = texts.map((text) => (text === undefined ? 0 : Buffer.byteLength(text)))
  let total = 0
  for (let i = 0; i < texts.length; i++) {
    if (texts[i] !== undefined) total += headerLength(lengths[i]!) + lengths[i]!
  }
  const bytes = Buffer.allocUnsafe(total)
  const ends: Array<number> = []
  let at = 0
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i]
    if (text !== undefined) {
      at = writeHeader(bytes, at, lengths[i]!)
      at += bytes.write(text, at)
    }
    ends.push(at)
  }
  return { bytes, ends }
}

/**
 * The header of the frame at `at`: its size (masked, as a client's frames are, or not), its opcode and its
 * payload's length; undefined when the bytes end within it.
 */
const headerAt = (bytes: Buffer, at: number) => {
  if (bytes.length - at < 2) return undefined
  const short = bytes[at + 1]! & 0x7f
  const size = 2 + (short === 126 ? 2 : short === 127 ? 8 : 0) + (bytes[at + 1]! & 0x80 ? 4 : 0)
  if (bytes.length - at < size) return undefined
  const payload =
    short < 126 ? short : short === 126 ? bytes.readUInt16BE(at + 2) : Number(bytes.readBigUInt64BE(at + 2))
  return { size, opcode: bytes[at]! & 0x0f, payload }
}

/** Messages `from` up to `to` (not included): their frames, and their texts for a connection that frames its own. */
export const slice = (frames: Frames, from: number, to: number) => {
  const start = from === 0 ? 0 : frames.ends[from - 1]!
  const end = to === 0 ? 0 : frames.ends[to - 1]!
  return {
    bytes: frames.bytes.subarray(start, end),
    texts: (): ReadonlyArray<string> => {
      const texts: Array<string> = []
      for (let at = start; at < end; ) {
        const { size, payload } = headerAt(frames.bytes, at)!
        texts.push(frames.bytes.toString("utf8", at + size, at + size + payload))
        at += size + payload
      }
      return texts
    }
  }
}

export type Slice = ReturnType<typeof slice>

/** A single message's frame. */
export const one = (text: string): Buffer => make([text]).bytes

/** A Close frame's opcode. */
const close = 0x8

/**
 * Calls `onClose` once the client sends a Close frame, reading what it sends beside the WebSocket library,
 * which answers it: frames written on the connection after that answer would break the closing handshake.
 * Payloads are skipped, not kept; at most a header (14 bytes) waits for the rest of it. Answers how to stop
 * watching.
 */
export const watchClose = (connection: Duplex, onClose: () => void): (() => void) => {
  let head = Buffer.alloc(0)
  let skip = 0
  const onData = (chunk: Buffer) => {
    let at = 0
    while (at < chunk.length) {
      if (skip > 0) {
        const skipped = Math.min(skip, chunk.length - at)
        skip -= skipped
        at += skipped
        continue
      }
      const taken = Math.min(14 - head.length, chunk.length - at)
      const bytes = Buffer.concat([head, chunk.subarray(at, at + taken)])
      const header = headerAt(bytes, 0)
      if (header === undefined) {
        head = bytes
        return
      }
      if (header.opcode === close) {
        stop()
        return onClose()
      }
      at += header.size - head.length
      head = Buffer.alloc(0)
      skip = header.payload
    }
  }
  const stop = () => {
    connection.off("data", onData)
  }
  connection.on("data", onData)
  return stop
}
