import { randomBytes } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { SourceStore } from "@kiln/core"
import { Deferred, Effect, Fiber, Stream } from "effect"
import {
  archiveVersion,
  body,
  type Crafted,
  collect,
  craft,
  extract,
  leftovers,
  list,
  run,
  store,
  tarGz,
  tree
} from "./SourceStore.fixtures.ts"

const files = {
  Dockerfile: "FROM scratch\nCOPY . /\n",
  "app/main.js": "console.log('hi')\n",
  "app/lib/util.js": "export const x = 1\n",
  "app/link.js": "-> main.js",
  "README.md": "# demo\n"
}

/** Stores `bytes` and expects a refusal with `reason` and a message containing `message`; nothing is left behind. */
const refuses = (
  bytes: Uint8Array | Effect.Effect<Uint8Array>,
  reason: SourceStore.SourceErrorReason,
  message: string,
  options: Parameters<typeof store>[0] = {}
) => {
  const { directory, layer } = store(options)
  return Effect.gen(function* () {
    const source = yield* SourceStore.SourceStore
    const upload = bytes instanceof Uint8Array ? bytes : yield* bytes
    const error = yield* Effect.flip(source.putArchive(body(upload)))
    expect(error).toBeInstanceOf(SourceStore.SourceError)
    expect(error.reason).toBe(reason)
    expect(error.message).toContain(message)
    expect(leftovers(directory)).toEqual([])
    expect(readdirSync(join(directory, "archives"))).toEqual([])
  }).pipe(Effect.provide(layer))
}

const refusesEntries = (entries: ReadonlyArray<Crafted>, message: string) =>
  refuses(craft(entries), "InvalidArchive", message)

describe("SourceStore archives", () => {
  it.live("stores an archive once, by the sha256 of its bytes, and answers its tree as the context", () => {
    const { directory, layer } = store()
    const bytes = tarGz(files)
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      const stored = yield* source.putArchive(body(bytes, 1000))
      const again = yield* source.putArchive(body(bytes))
      const blob = join(directory, "archives", `${stored.sha256}.tar.gz`)
      expect(stored).toEqual({ sha256: again.sha256, sizeBytes: bytes.length })
      expect(run("sha256sum", [blob]).toString("utf8").split(" ")[0]).toBe(stored.sha256)
      expect(readFileSync(blob).equals(bytes)).toBe(true)
      expect(readdirSync(join(directory, "archives"))).toEqual([`${stored.sha256}.tar.gz`])
      expect(leftovers(directory)).toEqual([])

      const context = yield* collect(source.context(archiveVersion(stored), ""))
      expect(list(context)).toEqual([
        "Dockerfile",
        "README.md",
        "app/",
        "app/lib/",
        "app/lib/util.js",
        "app/link.js",
        "app/main.js"
      ])
      expect(extract(context)).toEqual(files)
    }).pipe(Effect.provide(layer))
  })

  it.live("roots the context at a directory, and answers Missing for one that is not there", () => {
    const { layer } = store()
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      const version = archiveVersion(yield* source.putArchive(body(tarGz(files))))
      const app = yield* collect(source.context(version, "app"))
      expect(list(app)).toEqual(["lib/", "lib/util.js", "link.js", "main.js"])
      expect(extract(app)).toEqual({
        "main.js": files["app/main.js"],
        "lib/util.js": files["app/lib/util.js"],
        "link.js": "-> main.js"
      })
      expect(extract(yield* collect(source.context(version, "app/lib/")))).toEqual({
        "util.js": files["app/lib/util.js"]
      })

      const missing = yield* Effect.flip(collect(source.context(version, "nope")))
      expect(missing.reason).toBe("Missing")
      expect(missing.message).toBe(
        `root directory "nope" does not exist in ${version.commitSha!.slice(0, 8)}`
      )
      const file = yield* Effect.flip(collect(source.context(version, "README.md")))
      expect(file.message).toContain(`root directory "README.md" is not a directory`)
      const outside = yield* Effect.flip(collect(source.context(version, "../app")))
      expect(outside.reason).toBe("Missing")
    }).pipe(Effect.provide(layer))
  })

  it.live("keeps long paths and link targets through GNU and pax archives", () => {
    const { layer } = store()
    const deep = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(60)}.txt`
    const long = { [deep]: "deep\n", "x/link": `-> ../${deep}` }
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      for (const format of ["gnu", "posix"] as const) {
        const version = archiveVersion(yield* source.putArchive(body(tarGz(long, format))))
        expect(extract(yield* collect(source.context(version, "")))).toEqual(long)
      }
    }).pipe(Effect.provide(layer))
  })

  it.live("keeps hard links, and refuses a context that would cut one from its file", () => {
    const { layer } = store()
    const linked = { "lib/a.txt": "shared\n", "lib/b.txt": "=> lib/a.txt", "other/c.txt": "=> lib/a.txt" }
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      const version = archiveVersion(yield* source.putArchive(body(tarGz(linked))))
      const whole = yield* collect(source.context(version, ""))
      expect(extract(whole)).toEqual({
        "lib/a.txt": "shared\n",
        "lib/b.txt": "shared\n",
        "other/c.txt": "shared\n"
      })
      expect(run("tar", ["-tvf", "-"], undefined, whole).toString("utf8")).toContain("link to lib/a.txt")
      expect(extract(yield* collect(source.context(version, "lib")))).toEqual({
        "a.txt": "shared\n",
        "b.txt": "shared\n"
      })
      const cut = yield* Effect.flip(collect(source.context(version, "other")))
      expect(cut.reason).toBe("InvalidArchive")
      expect(cut.message).toBe(
        `archive entry "./other/c.txt" is a hard link to "./lib/a.txt", outside the root directory "other"`
      )
    }).pipe(Effect.provide(layer))
  })

  it.live("answers Missing for an archive that is not stored", () => {
    const { layer } = store()
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      const version = archiveVersion({ sha256: "a".repeat(64), sizeBytes: 1 })
      const error = yield* Effect.flip(collect(source.context(version, "")))
      expect(error.reason).toBe("Missing")
      expect(error.message).toBe("archive aaaaaaaa is not in the source store")
    }).pipe(Effect.provide(layer))
  })

  describe("refuses", () => {
    it.live("plain text", () =>
      refuses(Buffer.from("hello, world\n"), "InvalidArchive", "not a gzip-compressed tar")
    )

    it.live("an empty upload", () =>
      refuses(new Uint8Array(0), "InvalidArchive", "not a gzip-compressed tar")
    )

    it.live("an uncompressed tar", () =>
      refuses(run("tar", ["-cf", "-", "-C", tree(files), "."]), "InvalidArchive", "not a gzip-compressed tar")
    )

    it.live("gzip that is not a tar", () =>
      refuses(
        gzipSync("just some text\n".repeat(100)),
        "InvalidArchive",
        "not a gzip-compressed tar: it is not a tar archive"
      )
    )

    it.live("a truncated gzip", () => {
      const bytes = tarGz(files)
      return refuses(
        bytes.subarray(0, bytes.length - 20),
        "InvalidArchive",
        "the gzip data is corrupt or truncated"
      )
    })

    it.live("a path climbing out with ..", () =>
      refusesEntries([{ path: "../x", content: "x" }], `archive entry "../x" escapes the archive root`)
    )

    it.live("an absolute path", () =>
      refusesEntries(
        [{ path: "/etc/passwd", content: "root" }],
        `archive entry "/etc/passwd" has an absolute path`
      )
    )

    it.live("a path that climbs out after going in", () =>
      refusesEntries(
        [{ path: "a/../../x", content: "x" }],
        `archive entry "a/../../x" escapes the archive root`
      )
    )

    it.live("a NUL byte in a path", () =>
      // ustar names end at a NUL; only a pax path (written for names over 100 bytes or not ASCII) can carry
      // one, and tar-stream refuses such a pax header before the entry's path is known.
      refusesEntries(
        [{ path: `a\0${"b".repeat(120)}`, content: "x" }],
        "not a gzip-compressed tar: the tar archive has a path with a NUL byte"
      )
    )

    it.live("a symbolic link out of the root", () =>
      refuses(
        tarGz({ "a/link": "-> ../../outside" }),
        "InvalidArchive",
        `archive entry "./a/link" is a symbolic link to "../../outside", outside the archive root`
      )
    )

    it.live("a symbolic link to an absolute path", () =>
      refuses(
        tarGz({ etc: "-> /etc" }),
        "InvalidArchive",
        `archive entry "./etc" is a symbolic link to "/etc", outside the archive root`
      )
    )

    it.live("symbolic links that leave the root together", () =>
      refusesEntries(
        [
          { path: "a", type: "symbolic link", linkTarget: "." },
          { path: "b", type: "symbolic link", linkTarget: "a/.." }
        ],
        `archive entry "b" is a symbolic link to "a/..", which leads outside the archive root through other links`
      )
    )

    it.live("an entry written through a symbolic link", () =>
      refusesEntries(
        [
          { path: "dir", type: "symbolic link", linkTarget: "sub" },
          { path: "dir/x", content: "x" }
        ],
        `archive entry "dir/x" is inside the symbolic link "dir"`
      )
    )

    it.live("a hard link out of the root", () =>
      refusesEntries(
        [{ path: "x", type: "hard link", linkTarget: "../x" }],
        `archive entry "x" is a hard link to "../x", outside the archive root`
      )
    )

    it.live("a hard link to a file the archive does not have", () =>
      refusesEntries(
        [{ path: "x", type: "hard link", linkTarget: "y" }],
        `archive entry "x" is a hard link to "y", which is not an earlier file in the archive`
      )
    )

    it.live("a device", () =>
      refusesEntries(
        [{ path: "dev/null", type: "character device" }],
        `archive entry "dev/null" is a character device; only files, directories and links are allowed`
      )
    )

    it.live("a fifo", () =>
      refusesEntries([{ path: "pipe", type: "fifo" }], `archive entry "pipe" is a fifo; only files`)
    )

    it.live("an upload over maxArchiveBytes, without reading the rest of it", () => {
      const { directory, layer } = store({ maxArchiveBytes: 1024 * 1024 })
      let pulled = 0
      return Effect.gen(function* () {
        // A valid start of a gzip tar, 2 MiB long: only the size can stop it.
        const bytes = yield* craft([{ path: "noise", content: randomBytes(2 * 1024 * 1024).toString("hex") }])
        expect(bytes.length).toBeGreaterThan(2 * 1024 * 1024)
        const endless = Stream.fromIterable(
          (function* () {
            for (let offset = 0; offset < bytes.length; offset += 64 * 1024) {
              pulled++
              yield bytes.subarray(offset, offset + 64 * 1024)
            }
          })(),
          { chunkSize: 1 }
        )
        const source = yield* SourceStore.SourceStore
        const error = yield* Effect.flip(source.putArchive(endless))
        expect(error.reason).toBe("TooLarge")
        expect(error.message).toBe("archive is larger than 1 MiB")
        expect(pulled).toBeLessThan(20)
        expect(leftovers(directory)).toEqual([])
      }).pipe(Effect.provide(layer))
    })

    it.live("an archive whose first entry is refused, without reading the rest of it", () => {
      const { directory, layer } = store()
      let pulled = 0
      return Effect.gen(function* () {
        const bytes = yield* craft([
          { path: "../escape", content: "x" },
          { path: "noise", content: randomBytes(2 * 1024 * 1024).toString("hex") }
        ])
        const upload = Stream.fromIterable(
          (function* () {
            for (let offset = 0; offset < bytes.length; offset += 64 * 1024) {
              pulled++
              yield bytes.subarray(offset, offset + 64 * 1024)
            }
          })(),
          { chunkSize: 1 }
        )
        const source = yield* SourceStore.SourceStore
        const error = yield* Effect.flip(source.putArchive(upload))
        expect(error.message).toBe(`archive entry "../escape" escapes the archive root`)
        expect(pulled).toBeLessThan(bytes.length / (64 * 1024) / 2)
        expect(leftovers(directory)).toEqual([])
        expect(readdirSync(join(directory, "archives"))).toEqual([])
      }).pipe(Effect.provide(layer))
    })

    it.live("an archive that unpacks over maxUnpackedBytes", () => {
      const bytes = craft([{ path: "zeros", content: "\0".repeat(4 * 1024 * 1024) }]).pipe(
        Effect.tap((bytes) => Effect.sync(() => expect(bytes.length).toBeLessThan(64 * 1024)))
      )
      return refuses(bytes, "TooLarge", "archive unpacks to more than 1 MiB", {
        maxUnpackedBytes: 1024 * 1024
      })
    })

    it.live("an archive with more than maxEntries entries", () =>
      refuses(
        craft(["a", "b", "c", "d"].map((path) => ({ path, content: path }))),
        "TooLarge",
        "archive has more than 3 entries",
        { maxEntries: 3 }
      )
    )
  })

  it.live("removes the partial upload when putArchive is interrupted", () => {
    const { directory, layer } = store()
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      const received = yield* Deferred.make<void>()
      const stalled = Stream.concat(
        body(tarGz(files)).pipe(Stream.tap(() => Deferred.succeed(received, undefined))),
        Stream.never
      )
      const fiber = yield* Effect.forkChild(source.putArchive(stalled))
      yield* Deferred.await(received)
      expect(leftovers(directory).length).toBe(1)
      yield* Fiber.interrupt(fiber)
      expect(leftovers(directory)).toEqual([])
    }).pipe(Effect.provide(layer))
  })

  it.live("stops and cleans up when the upload itself fails", () => {
    const { directory, layer } = store()
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      const failing = Stream.concat(body(tarGz(files)), Stream.fail("connection reset" as const))
      expect(yield* Effect.flip(source.putArchive(failing))).toBe("connection reset")
      expect(leftovers(directory)).toEqual([])
    }).pipe(Effect.provide(layer))
  })

  it.live("sweeps the archives no version names once they are past the grace period", () => {
    const { directory, layer } = store({ archiveGracePeriod: "300 millis" })
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      const named = yield* source.putArchive(body(tarGz(files)))
      const unnamed = yield* source.putArchive(body(tarGz({ "other.txt": "other\n" })))
      yield* Effect.sleep("400 millis")
      const fresh = yield* source.putArchive(body(tarGz({ "fresh.txt": "fresh\n" })))
      const asked: Array<ReadonlyArray<string>> = []
      const referencedAmong: SourceStore.ReferencedAmong = (sha256s) => {
        asked.push(sha256s)
        return SourceStore.referencedOnly([named.sha256])(sha256s)
      }
      expect(yield* source.sweepArchives(referencedAmong)).toEqual([unnamed.sha256])
      // Only the stale ones were asked about: the fresh one is kept without a question.
      expect(asked).toEqual([[named.sha256, unnamed.sha256].sort()])
      expect(readdirSync(join(directory, "archives")).sort()).toEqual(
        [named, fresh].map((stored) => `${stored.sha256}.tar.gz`).sort()
      )
      expect(extract(yield* collect(source.context(archiveVersion(named), "")))).toEqual(files)
      const error = yield* Effect.flip(collect(source.context(archiveVersion(unnamed), "")))
      expect(error.reason).toBe("Missing")
      // A sweep that cannot tell (every archive referenced) removes nothing.
      yield* Effect.sleep("400 millis")
      expect(yield* source.sweepArchives((sha256s) => Effect.succeed(new Set(sha256s)))).toEqual([])
    }).pipe(Effect.provide(layer))
  })

  it.live("keeps an archive uploaded again since it went stale", () => {
    const { layer } = store({ archiveGracePeriod: "300 millis" })
    return Effect.gen(function* () {
      const source = yield* SourceStore.SourceStore
      const bytes = tarGz(files)
      const stored = yield* source.putArchive(body(bytes))
      yield* Effect.sleep("400 millis")
      yield* source.putArchive(body(bytes))
      expect(yield* source.sweepArchives(SourceStore.referencedOnly([]))).toEqual([])
      expect(extract(yield* collect(source.context(archiveVersion(stored), "")))).toEqual(files)
    }).pipe(Effect.provide(layer))
  })
})
