import { truncateSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option, Stream } from "effect"
import fc from "fast-check"
import { type Event, type Header, read, write } from "../src/internal/tar.ts"
import { collectTar, run, tempDir, tree } from "./SourceStore.fixtures.ts"

type Written = Header & { readonly content: string }

const segment = fc
  .string({ unit: "grapheme", minLength: 1, maxLength: 40 })
  .filter((s) => !s.includes("/") && !s.includes("\0") && !s.includes("\uFFFD"))
  .filter((s) => s !== "." && s !== "..")
const entry: fc.Arbitrary<Written> = fc
  .record({
    path: fc.array(segment, { minLength: 1, maxLength: 6 }).map((segments) => segments.join("/")),
    type: fc.constantFrom("file", "directory", "symbolic link", "hard link"),
    linkTarget: fc
      .string({ unit: "grapheme", minLength: 1, maxLength: 150 })
      .filter((s) => !s.includes("\0") && !s.includes("\uFFFD")),
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

const eventsOf = (entries: ReadonlyArray<Written>): ReadonlyArray<Event> =>
  entries.flatMap(
    ({ content, ...header }): ReadonlyArray<Event> => [
      { _tag: "Entry", header },
      { _tag: "Data", bytes: Buffer.from(content) },
      { _tag: "EntryEnd" }
    ]
  )

/** The events of `bytes` cut at `cuts`, as a stream would deliver them, or the reader's reason. */
const readCut = (bytes: Uint8Array, cuts: ReadonlyArray<number> = []) => {
  const points = [...new Set([0, ...cuts.map((c) => c % (bytes.length + 1)), bytes.length])].sort(
    (a, b) => a - b
  )
  const pieces = points.slice(1).map((end, i) => bytes.subarray(points[i], end))
  return Stream.runCollect(read(Stream.fromIterable(pieces), (reason) => reason))
}

/** Each entry's header and content, as `read` answers them. */
const entriesOf = (events: ReadonlyArray<Event>) => {
  const seen: Array<{ header: Header; content: string }> = []
  let data: Array<Uint8Array> = []
  for (const event of events) {
    if (event._tag === "Entry") {
      seen.push({ header: event.header, content: "" })
      data = []
    } else if (event._tag === "Data") data.push(event.bytes)
    else seen.at(-1)!.content = Buffer.concat(data).toString("utf8")
  }
  return seen
}

const file = (path: string, content: string): Written => ({
  path,
  type: "file",
  linkTarget: "",
  size: Buffer.byteLength(content),
  mode: 0o644,
  mtime: 0,
  content
})

/**
 * Overwrites the field at `field` of the header block at `offset` with `text` and fixes the block's
 * checksum, for what no writer would write.
 */
const forge = (tar: Buffer, offset: number, field: number, text: string) => {
  tar.write(text, offset + field, "latin1")
  tar.fill(0x20, offset + 148, offset + 156)
  const sum = tar.subarray(offset, offset + 512).reduce((total, byte) => total + byte, 0)
  tar.set(Buffer.from(`${sum.toString(8).padStart(6, "0")}\0 `), offset + 148)
}

describe("tar", () => {
  it("reads back what it writes, however the bytes are cut", () =>
    fc.assert(
      fc.asyncProperty(
        fc.array(entry, { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        async (entries, cuts) => {
          const events = await Effect.runPromise(
            Effect.flatMap(collectTar(eventsOf(entries)), (tar) => readCut(tar, cuts))
          )
          expect(entriesOf(events)).toEqual(
            entries.map(({ content, ...header }) => ({
              header: { ...header, path: header.type === "directory" ? `${header.path}/` : header.path },
              content
            }))
          )
        }
      ),
      { numRuns: 300 }
    ))

  it("answers a reason, never a defect or a hang, on arbitrary bytes", () =>
    fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 3000 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        async (bytes, cuts) => {
          const exit = await Effect.runPromise(Effect.exit(Effect.timeout(readCut(bytes, cuts), "2 seconds")))
          if (Exit.isFailure(exit))
            expect(Option.getOrUndefined(Exit.findErrorOption(exit))).toEqual(expect.any(String))
        }
      )
    ))

  it("answers a reason or the entries, never a defect or a hang, on forged headers", () =>
    fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            // Mostly the numbers (mode, owner, size, mtime), the type flag and the magic; the checksum is
            // fixed after each edit, so every header gets past it.
            at: fc.oneof(
              { weight: 4, arbitrary: fc.integer({ min: 100, max: 147 }) },
              { weight: 2, arbitrary: fc.constantFrom(156, 257, 262, 263) },
              { weight: 1, arbitrary: fc.integer({ min: 156, max: 511 }) },
              { weight: 1, arbitrary: fc.integer({ min: 0, max: 99 }) }
            ),
            byte: fc.integer({ min: 0, max: 255 })
          }),
          { minLength: 1, maxLength: 6 }
        ),
        async (edits) => {
          const forged = Effect.flatMap(
            collectTar(eventsOf([file("a.txt", "a".repeat(700)), file("b.txt", "b")])),
            (tar) => {
              for (const { at, byte } of edits) forge(tar, 0, at, String.fromCharCode(byte))
              return readCut(tar)
            }
          )
          const exit = await Effect.runPromise(Effect.exit(Effect.timeout(forged, "2 seconds")))
          if (Exit.isFailure(exit))
            expect(Option.getOrUndefined(Exit.findErrorOption(exit))).toEqual(expect.any(String))
        }
      ),
      { numRuns: 300 }
    ))

  it.effect("writes what GNU tar reads, long names and all", () =>
    Effect.gen(function* () {
      const long = `${"x".repeat(120)}/${"é".repeat(80)}.txt`
      const bytes = yield* collectTar(
        eventsOf([
          { path: "dir", type: "directory", linkTarget: "", size: 0, mode: 0o755, mtime: 0, content: "" },
          file(long, "hello"),
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
      )
      expect(
        run("tar", ["--quoting-style=literal", "-tf", "-"], undefined, bytes).toString("utf8").split("\n")
      ).toEqual(["dir/", long, "dir/link", ""])
      expect(run("tar", ["-xOf", "-", long], undefined, bytes).toString("utf8")).toBe("hello")
    })
  )

  it.effect("reads what GNU tar writes, long names and links too", () =>
    Effect.gen(function* () {
      const top = "d".repeat(60)
      // Over 100 bytes, it needs ustar's prefix field, a GNU long name or a pax path.
      const deep = `${top}/${"e".repeat(60)}/${"é".repeat(40)}.txt`
      const dir = tree({ [deep]: "deep\n", "x/link": `-> ../${deep}`, "x/hard": `=> ${deep}` })
      const entries = (format: string, paths: ReadonlyArray<string>) =>
        Effect.map(
          readCut(run("tar", [`--format=${format}`, "--sort=name", "-cf", "-", "-C", dir, ...paths])),
          (events) =>
            entriesOf(events).map(({ header, content }) => [
              header.path,
              header.type,
              header.linkTarget,
              content
            ])
        )
      for (const format of ["gnu", "posix"])
        expect(yield* entries(format, ["x", top])).toEqual([
          ["x/", "directory", "", ""],
          ["x/hard", "file", "", "deep\n"],
          ["x/link", "symbolic link", `../${deep}`, ""],
          [`${top}/`, "directory", "", ""],
          [`${top}/${"e".repeat(60)}/`, "directory", "", ""],
          [deep, "hard link", "x/hard", ""]
        ])
      // ustar has no room for the link's long target.
      expect((yield* entries("ustar", [deep])).at(-1)).toEqual([deep, "file", "", "deep\n"])
    })
  )

  it.effect("reads pre-POSIX (v7) headers, which have no magic", () =>
    Effect.gen(function* () {
      const dir = tree({ "a.txt": "a\n", "b/c.txt": "c\n" })
      const events = yield* readCut(run("tar", ["--format=v7", "--sort=name", "-cf", "-", "-C", dir, "."]))
      expect(entriesOf(events).map(({ header, content }) => [header.path, header.type, content])).toEqual([
        ["./", "directory", ""],
        ["./a.txt", "file", "a\n"],
        ["./b/", "directory", ""],
        ["./b/c.txt", "file", "c\n"]
      ])
    })
  )

  describe("answers what is wrong with", () => {
    const fails = (bytes: Uint8Array, reason: string) =>
      Effect.gen(function* () {
        // Whole, and one byte at a time: a reason must not depend on where the input was cut.
        for (const cuts of [[], Array.from(bytes.keys())])
          expect(yield* Effect.flip(readCut(bytes, cuts))).toBe(reason)
      })
    const twoFiles = collectTar(eventsOf([file("a.txt", "a".repeat(700)), file("b.txt", "b")]))

    it.effect("an empty input", () => fails(new Uint8Array(0), "it is not a tar archive"))

    it.effect("text", () => fails(Buffer.from("hello\n".repeat(200)), "it is not a tar archive"))

    it.effect("but reads an archive of nothing but its end", () =>
      Effect.gen(function* () {
        expect(yield* readCut(new Uint8Array(1024))).toEqual([])
        expect(yield* readCut(run("tar", ["-cf", "-", "--files-from=/dev/null"]))).toEqual([])
      })
    )

    it.effect("a bad checksum in the first header", () =>
      Effect.gen(function* () {
        const tar = yield* twoFiles
        tar[0] = "z".charCodeAt(0)
        yield* fails(tar, "it is not a tar archive")
      })
    )

    it.effect("a bad checksum in a later header", () =>
      Effect.gen(function* () {
        const tar = yield* twoFiles
        // a.txt: a header and two blocks of data.
        tar[3 * 512] = "z".charCodeAt(0)
        yield* fails(tar, "the tar archive has a corrupt header")
        // What came before the failure is answered first, so a rule can refuse a.txt before it.
        const seen: Array<string> = []
        const failure = yield* read(Stream.make(tar), (reason) => reason).pipe(
          Stream.runForEach((event) => Effect.sync(() => seen.push(event._tag))),
          Effect.flip
        )
        expect([seen, failure]).toEqual([
          ["Entry", "Data", "EntryEnd"],
          "the tar archive has a corrupt header"
        ])
      })
    )

    it.effect("a truncated header", () =>
      Effect.gen(function* () {
        const tar = yield* twoFiles
        yield* fails(tar.subarray(0, 3 * 512 + 100), "the tar archive is truncated")
      })
    )

    it.effect("a truncated body", () =>
      Effect.gen(function* () {
        const tar = yield* twoFiles
        yield* fails(tar.subarray(0, 512 + 600), "the tar archive is truncated")
      })
    )

    it.effect("a link that claims data, which tar readers disagree on", () =>
      Effect.gen(function* () {
        const tar = yield* twoFiles
        forge(tar, 0, 156, "2")
        yield* fails(tar, "the tar archive has a symbolic link with data")
      })
    )

    it.effect("a size that is not a number", () =>
      Effect.gen(function* () {
        const tar = yield* twoFiles
        forge(tar, 0, 124, "zzzzzzzzzzz\0")
        yield* fails(tar, "the tar archive has a header with an invalid size")
        // Base 256 starts with 0x80 (or 0xff, negative): anything else is not a number.
        forge(tar, 0, 124, "\x81\0\0\0\0\0\0\0\0\0\0\0")
        yield* fails(tar, "the tar archive has a header with an invalid size")
      })
    )

    it.effect("a mode that is not a number", () =>
      Effect.gen(function* () {
        const tar = yield* twoFiles
        forge(tar, 0, 100, "zzzzzzz\0")
        yield* fails(tar, "the tar archive has a header with an invalid number")
        forge(tar, 0, 100, "\xff\xff\xff\xff\xff\xff\xff\xff")
        yield* fails(tar, "the tar archive has a header with an invalid number")
      })
    )

    it.effect("an extended header too large to hold", () =>
      Effect.gen(function* () {
        const tar = yield* twoFiles
        forge(tar, 0, 156, "x")
        forge(tar, 0, 124, `${(5 * 1024 * 1024).toString(8).padStart(11, "0")}\0`)
        yield* fails(tar, "the tar archive has an extended header over 4 MiB")
      })
    )

    it.effect("a sparse file", () =>
      Effect.gen(function* () {
        const dir = tempDir("sparse")
        writeFileSync(join(dir, "holes"), "end")
        truncateSync(join(dir, "holes"), 4 * 1024 * 1024)
        const tar = run("tar", ["--format=posix", "--sparse", "-cf", "-", "-C", dir, "holes"])
        yield* fails(tar, "the tar archive has a sparse file, which is not supported")
      })
    )

    it.effect("a name that is not UTF-8", () =>
      Effect.gen(function* () {
        const dir = tempDir("latin1")
        writeFileSync(Buffer.from(`${dir}/caf\xe9`, "latin1"), "x")
        yield* fails(
          run("tar", ["--format=gnu", "-cf", "-", "-C", dir, "."]),
          "the tar archive has an entry whose path is not valid UTF-8"
        )
      })
    )
  })

  it.live("reads in flat memory: it pulls its input only as its reader takes entries", () =>
    Effect.gen(function* () {
      const tar = yield* collectTar(eventsOf([file("big", "x".repeat(8 * 1024 * 1024))]))
      let pulled = 0
      const input = Stream.fromIterable(
        Array.from({ length: Math.ceil(tar.length / 65536) }, (_, i) =>
          tar.subarray(i * 65536, (i + 1) * 65536)
        )
      ).pipe(Stream.tap(() => Effect.sync(() => pulled++)))
      const ahead = yield* read(input, (reason) => reason).pipe(
        Stream.filter((event) => event._tag === "Data"),
        Stream.take(1),
        Stream.runForEach(() => Effect.sleep("200 millis")),
        Effect.andThen(Effect.sync(() => pulled))
      )
      expect(ahead).toBeLessThan(8)
    })
  )

  it.live("writes in flat memory: entries without data wait for the tar's reader too", () =>
    Effect.gen(function* () {
      let entries = 0
      const directories = Stream.fromIterable(
        Array.from(
          { length: 20_000 },
          (_, i): ReadonlyArray<Event> => [
            {
              _tag: "Entry",
              header: { path: `d${i}`, type: "directory", linkTarget: "", size: 0, mode: 0o755, mtime: 0 }
            },
            { _tag: "EntryEnd" }
          ]
        )
      ).pipe(
        Stream.flattenIterable,
        Stream.tap((event) => Effect.sync(() => event._tag === "Entry" && entries++))
      )
      const ahead = yield* write(directories).pipe(
        Stream.take(1),
        Stream.runForEach(() => Effect.sleep("200 millis")),
        Effect.andThen(Effect.sync(() => entries))
      )
      expect(ahead).toBeLessThan(200)
    })
  )
})
