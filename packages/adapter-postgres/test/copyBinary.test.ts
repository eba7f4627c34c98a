import { randomBytes } from "node:crypto"
import { Writable } from "node:stream"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { dataOf, Malformed, rowsOf, writeAll } from "../src/internal/copyBinary.ts"

const id = "6f1c3e52-8a8d-4b8e-9f6a-0c1d2e3f4a5b"

const collect = <E>(stream: Stream.Stream<Uint8Array, E>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => Buffer.concat(Array.from(chunks)))

/** `bytes` cut at the given sizes, repeating them, as a body would arrive. */
const piecesOf = (bytes: Buffer, sizes: ReadonlyArray<number>) => {
  const pieces: Array<Uint8Array> = []
  for (let offset = 0, i = 0; offset < bytes.length; i++) {
    const size = sizes[i % sizes.length]!
    pieces.push(bytes.subarray(offset, offset + size))
    offset += size
  }
  return Stream.fromIterable(pieces)
}

/** The rows a binary COPY stream holds, read field by field: (uuid, idx, data). */
const rowsIn = (copy: Buffer) => {
  expect(copy.subarray(0, 11).toString("latin1")).toBe("PGCOPY\n\xff\r\n\0")
  const rows: Array<{ id: string; idx: number; data: Buffer }> = []
  let at = 19
  while (copy.readInt16BE(at) !== -1) {
    expect(copy.readInt16BE(at)).toBe(3)
    expect(copy.readInt32BE(at + 2)).toBe(16)
    const uuid = copy.subarray(at + 6, at + 22).toString("hex")
    const idx = copy.readInt32BE(at + 26)
    const length = copy.readInt32BE(at + 30)
    rows.push({ id: uuid, idx, data: copy.subarray(at + 34, at + 34 + length) })
    at += 34 + length
  }
  expect(at + 2).toBe(copy.length)
  return rows
}

/** A binary COPY of one bytea column, as the server sends it, of these rows' data. */
const copyOutOf = (rows: ReadonlyArray<Buffer>) =>
  Buffer.concat([
    Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"),
    Buffer.alloc(8),
    ...rows.flatMap((data) => {
      const head = Buffer.alloc(6)
      head.writeInt16BE(1, 0)
      head.writeInt32BE(data.length, 2)
      return [head, data]
    }),
    Buffer.from([0xff, 0xff])
  ])

describe("binary COPY rows", () => {
  it.effect("cuts a body into rows of the given size, the last shorter, however it arrives", () =>
    Effect.gen(function* () {
      const body = randomBytes(10_000)
      for (const sizes of [[10_000], [1], [7, 4096, 3], [20_000, 1], [4096]]) {
        const rows = rowsIn(yield* collect(rowsOf(id, 4096)(piecesOf(body, sizes))))
        expect(rows.map((row) => [row.id, row.idx, row.data.length])).toEqual([
          [id.replaceAll("-", ""), 0, 4096],
          [id.replaceAll("-", ""), 1, 4096],
          [id.replaceAll("-", ""), 2, 10_000 - 8192]
        ])
        expect(Buffer.concat(rows.map((row) => row.data)).equals(body)).toBe(true)
      }
    })
  )

  it.effect("makes no row of an empty body, and one row of a body of exactly one row", () =>
    Effect.gen(function* () {
      expect(rowsIn(yield* collect(rowsOf(id, 4096)(Stream.empty)))).toEqual([])
      const body = randomBytes(4096)
      const rows = rowsIn(yield* collect(rowsOf(id, 4096)(piecesOf(body, [1000]))))
      expect(rows.map((row) => row.data.length)).toEqual([4096])
    })
  )

  it.effect("reads back the data of every row, in order, however the server's bytes are cut", () =>
    Effect.gen(function* () {
      const rows = [randomBytes(5000), randomBytes(0), randomBytes(1), randomBytes(70_000)]
      const copy = copyOutOf(rows)
      for (const sizes of [[copy.length], [1], [2, 3, 5, 7], [19], [4096]]) {
        expect((yield* collect(dataOf(piecesOf(copy, sizes)))).equals(Buffer.concat(rows))).toBe(true)
      }
    })
  )

  it.effect("refuses a stream that is not one bytea per row, or that ends early", () =>
    Effect.gen(function* () {
      const good = copyOutOf([randomBytes(100)])
      const threeFields = Buffer.from(good)
      threeFields.writeInt16BE(3, 19)
      const nullData = Buffer.from(good)
      nullData.writeInt32BE(-1, 21)
      for (const bad of [
        good.subarray(0, good.length - 1),
        good.subarray(0, 30),
        Buffer.concat([good, Buffer.from([0])]),
        Buffer.from("not a copy stream at all"),
        threeFields,
        nullData
      ]) {
        const error = yield* Effect.flip(collect(dataOf(piecesOf(bad, [7]))))
        expect(error).toBeInstanceOf(Malformed)
      }
    })
  )
})

describe("writing into a Node writable", () => {
  /** A writable that takes one small piece at a time, each a turn of the event loop later. */
  const slowSink = (received: Array<Buffer>, failAt?: number) =>
    new Writable({
      highWaterMark: 16,
      write(chunk: Buffer, _encoding, callback) {
        received.push(chunk)
        setImmediate(() =>
          callback(received.length === failAt ? new Error("the server went away") : undefined)
        )
      }
    })

  it.effect("waits whenever the writable asks, and leaves no listener behind", () =>
    Effect.gen(function* () {
      const received: Array<Buffer> = []
      const sink = slowSink(received)
      sink.on("error", () => {})
      const before = { drain: sink.listenerCount("drain"), close: sink.listenerCount("close") }
      const pieces = Array.from({ length: 200 }, () => randomBytes(64))
      yield* writeAll(sink, Stream.fromIterable(pieces), Effect.die("gone"))
      expect(Buffer.concat(received).equals(Buffer.concat(pieces))).toBe(true)
      expect({ drain: sink.listenerCount("drain"), close: sink.listenerCount("close") }).toEqual(before)
    })
  )

  it.effect("stops writing once the writable is destroyed, and answers how it ended", () =>
    Effect.gen(function* () {
      const received: Array<Buffer> = []
      const sink = slowSink(received, 5)
      sink.on("error", () => {})
      const pieces = Array.from({ length: 200 }, () => randomBytes(64))
      const ended = yield* Effect.flip(
        writeAll(sink, Stream.fromIterable(pieces), Effect.fail("gone" as const))
      )
      expect(ended).toBe("gone")
      expect(received.length).toBeLessThan(10)
    })
  )
})
