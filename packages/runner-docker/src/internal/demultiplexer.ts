/** Docker's multiplexed attach and exec streams: 8-byte frame headers (stream type, size) before each chunk. */

/** A piece of a process's output, from Docker's multiplexed stream. */
export interface Output {
  readonly stream: "stdout" | "stderr"
  readonly data: Uint8Array
}

/** Splits Docker's multiplexed stream (8-byte frame headers: stream type, size) into stdout and stderr, in order. */
export const makeDemultiplexer = (): ((chunk: Uint8Array) => ReadonlyArray<Output>) => {
  let pending = new Uint8Array(0)
  return (chunk) => {
    const buffer = pending.length === 0 ? chunk : concat(pending, chunk)
    const outputs: Array<Output> = []
    let at = 0
    while (buffer.length - at >= 8) {
      const size = new DataView(buffer.buffer, buffer.byteOffset + at + 4, 4).getUint32(0)
      if (buffer.length - at - 8 < size) break
      const data = buffer.slice(at + 8, at + 8 + size)
      if (size > 0) outputs.push({ stream: buffer[at] === 2 ? "stderr" : "stdout", data })
      at += 8 + size
    }
    pending = buffer.slice(at)
    return outputs
  }
}

const concat = (a: Uint8Array, b: Uint8Array) => {
  const joined = new Uint8Array(a.length + b.length)
  joined.set(a)
  joined.set(b, a.length)
  return joined
}
