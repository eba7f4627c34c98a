/**
 * Frames laid out by `wsFrames.ts` are read by a real `ws` client, from a server that completes the upgrade
 * by hand and writes them as they are: every length form (one byte, two, eight), multi-byte text, and
 * messages with nothing to send.
 */
import { createHash } from "node:crypto"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { PassThrough } from "node:stream"
import { expect, it } from "vitest"
import WebSocket from "ws"
import * as WsFrames from "../src/internal/wsFrames.ts"

/** The text messages a `ws` client receives when the server writes these bytes and then closes. */
const received = (bytes: Uint8Array) =>
  new Promise<Array<string>>((resolve, reject) => {
    const server = createServer()
    server.on("upgrade", (request, socket) => {
      const accept = createHash("sha1")
        .update(`${request.headers["sec-websocket-key"]}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
        .digest("base64")
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`
      )
      socket.write(bytes)
      // A close frame with code 1000.
      socket.end(Buffer.from([0x88, 0x02, 0x03, 0xe8]))
    })
    server.listen(0, "127.0.0.1", () => {
      const texts: Array<string> = []
      const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`)
      client.on("message", (data, isBinary) => {
        if (isBinary) reject(new Error("a binary message"))
        texts.push(String(data))
      })
      client.on("error", reject)
      client.on("close", (code) => {
        server.close()
        if (code === 1000) resolve(texts)
        else reject(new Error(`closed with ${code}`))
      })
    })
  })

const messages = [
  "short",
  undefined,
  "é".repeat(100),
  "x".repeat(125),
  "y".repeat(126),
  "z".repeat(65_535),
  "w".repeat(65_536),
  undefined,
  "last ✓"
]

it("frames messages as a client reads them, in order, skipping those with nothing to send", async () => {
  const frames = WsFrames.make(messages)
  expect(await received(frames.bytes)).toEqual(messages.filter((text) => text !== undefined))
  expect(frames.ends).toHaveLength(messages.length)
  expect(frames.ends.at(-1)).toBe(frames.bytes.length)
})

it("slices whole frames, and gives their texts back for a connection that frames its own", async () => {
  const frames = WsFrames.make(messages)
  for (const [from, to] of [
    [0, 1],
    [1, 2],
    [2, 6],
    [5, 9],
    [0, 9],
    [4, 4]
  ] as const) {
    const slice = WsFrames.slice(frames, from, to)
    const expected = messages.slice(from, to).filter((text) => text !== undefined)
    expect(await received(slice.bytes)).toEqual(expected)
    expect(slice.texts()).toEqual(expected)
  }
  expect(await received(WsFrames.one("alone"))).toEqual(["alone"])
})

/** A client's frame: final, masked (with a zero mask, so the payload reads as sent). */
const clientFrame = (opcode: number, payload: Buffer) => {
  const length =
    payload.length < 126
      ? Buffer.from([0x80 | payload.length])
      : Buffer.concat([Buffer.from([0x80 | 126]), Buffer.from([payload.length >> 8, payload.length & 0xff])])
  return Buffer.concat([Buffer.from([0x80 | opcode]), length, Buffer.alloc(4), payload])
}

it("hears a client's Close after its other frames, however the bytes are cut, and only once", () => {
  // A text frame whose payload holds a Close frame's bytes, a ping, then the Close: only the last counts.
  const decoy = clientFrame(0x1, Buffer.concat([clientFrame(0x8, Buffer.alloc(0)), Buffer.alloc(300)]))
  const bytes = Buffer.concat([
    decoy,
    clientFrame(0x9, Buffer.from("ping")),
    clientFrame(0x8, Buffer.from([3, 232]))
  ])
  for (const cut of [1, 2, 3, 7, 64, bytes.length]) {
    const connection = new PassThrough()
    const heard: Array<number> = []
    WsFrames.watchClose(connection, () => heard.push(connection.listenerCount("data")))
    for (let at = 0; at < bytes.length - 6; at += cut)
      connection.emit("data", bytes.subarray(at, Math.min(at + cut, bytes.length - 6)))
    expect(heard).toEqual([])
    connection.emit("data", bytes.subarray(Math.max(0, bytes.length - 6)))
    connection.emit("data", clientFrame(0x8, Buffer.alloc(0)))
    // Heard once, and it stopped listening.
    expect(heard).toEqual([0])
  }
})
