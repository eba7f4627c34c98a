import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import {
  type Event,
  encodeHeader,
  endOfArchive,
  padding,
  TarReader,
  type WriteHeader
} from "../src/internal/tar.ts"
import { run } from "./SourceStore.fixtures.ts"

const segment = fc
  .string({ unit: "grapheme", minLength: 1, maxLength: 40 })
  .filter((s) => !s.includes("/") && !s.includes("\0"))
  .filter((s) => s !== "." && s !== "..")
const entry: fc.Arbitrary<WriteHeader & { readonly content: string }> = fc
  .record({
    path: fc.array(segment, { minLength: 1, maxLength: 6 }).map((segments) => segments.join("/")),
    type: fc.constantFrom("file", "directory", "symbolic link", "hard link"),
    linkTarget: fc
      .string({ unit: "grapheme", minLength: 1, maxLength: 150 })
      .filter((s) => !s.includes("\0")),
    content: fc.string({ unit: "grapheme", maxLength: 2000 }),
    mode: fc.integer({ min: 0, max: 0o7777 }),
    mtime: fc.integer({ min: 0, max: 0o77777777777 })
  })
  .map((e) => {
    const file = e.type === "file"
    const link = e.type === "symbolic link" || e.type === "hard link"
    const content = file ? e.content : ""
    return { ...e, content, linkTarget: link ? e.linkTarget : "", size: Buffer.byteLength(content) }
  })

const archive = (entries: ReadonlyArray<WriteHeader & { readonly content: string }>) =>
  Buffer.concat([
    ...entries.flatMap((e) => [encodeHeader(e), Buffer.from(e.content), padding(e.size)]),
    endOfArchive()
  ])

/** Reads `bytes` cut at `cuts`, as a stream would deliver them. */
const read = (bytes: Uint8Array, cuts: ReadonlyArray<number>) => {
  const reader = new TarReader()
  const events: Array<Event> = []
  const points = [...new Set([0, ...cuts.map((c) => c % (bytes.length + 1)), bytes.length])].sort(
    (a, b) => a - b
  )
  for (let i = 1; i < points.length; i++) {
    const result = reader.push(bytes.subarray(points[i - 1], points[i]))
    if (Result.isFailure(result)) return Result.fail(result.failure)
    events.push(...result.success)
  }
  const end = reader.end()
  return Result.isFailure(end) ? Result.fail(end.failure) : Result.succeed(events)
}

describe("tar", () => {
  it("reads back what it writes, however the bytes are cut", () =>
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (entries, cuts) => {
          const events = Result.getOrThrow(read(archive(entries), cuts))
          const seen: Array<{ header: Omit<WriteHeader, "type"> & { type: string }; content: string }> = []
          let data: Array<Uint8Array> = []
          for (const event of events) {
            if (event._tag === "Entry") {
              const { path, type, linkTarget, size, mode, mtime } = event.header
              seen.push({ header: { path, type, linkTarget, size, mode, mtime }, content: "" })
              data = []
            } else if (event._tag === "Data") data.push(event.bytes)
            else seen.at(-1)!.content = Buffer.concat(data).toString("utf8")
          }
          expect(seen).toEqual(
            entries.map(({ content, ...header }) => ({
              header: { ...header, path: header.type === "directory" ? `${header.path}/` : header.path },
              content
            }))
          )
        }
      ),
      { numRuns: 300 }
    ))

  it("answers an error, never throws, on arbitrary bytes", () =>
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.array(fc.nat(), { maxLength: 5 }), (bytes, cuts) => {
        read(bytes, cuts)
      })
    ))

  it("writes what GNU tar reads, long names and all", () => {
    const long = `${"x".repeat(120)}/${"é".repeat(80)}.txt`
    const bytes = archive([
      { path: "dir", type: "directory", linkTarget: "", size: 0, mode: 0o755, mtime: 0, content: "" },
      { path: long, type: "file", linkTarget: "", size: 5, mode: 0o644, mtime: 0, content: "hello" },
      {
        path: "dir/link",
        type: "symbolic link",
        linkTarget: `../${long}`,
        size: 0,
        mode: 0o777,
        mtime: 0,
        content: ""
      }
    ])
    expect(
      run("tar", ["--quoting-style=literal", "-tf", "-"], undefined, bytes).toString("utf8").split("\n")
    ).toEqual(["dir/", long, "dir/link", ""])
  })
})
