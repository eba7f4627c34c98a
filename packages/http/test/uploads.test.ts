/**
 * Archive uploads on both routes that take them, over raw HTTP so that every byte (and every missing one)
 * is the test's: each body gets its answer within 5 s of its last byte — 2xx, 400 saying what is wrong, or
 * 413 — never a hang and never a 5xx.
 */
import { execFileSync } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { mkdirSync, writeFileSync } from "node:fs"
import { request as httpRequest } from "node:http"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { Id } from "@kiln/core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startServer, type TestServer, workspaceWithApp } from "./fixtures/server.ts"

/** Above the 1 MiB that JSON bodies get, so that the test shows uploads are not held to it. */
const maxArchiveBytes = 2 * 1024 * 1024
let server: TestServer
beforeAll(async () => {
  server = await startServer({ sources: { maxArchiveBytes } })
})
afterAll(() => server.close())

const answerWithinMs = 5_000

let archives = 0
/** A `.tar.gz` of these files, as `tar` makes it. */
const archiveOf = (files: Record<string, string | Uint8Array>) => {
  const dir = join(server.dir, `archive-${++archives}`)
  mkdirSync(dir, { recursive: true })
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content)
  return new Uint8Array(
    gzipSync(execFileSync("tar", ["-c", "-C", dir, "."], { maxBuffer: 64 * 1024 * 1024 }))
  )
}

const boundary = "kiln-test-boundary"
const bytes = (...chunks: ReadonlyArray<string | Uint8Array>) =>
  new Uint8Array(
    Buffer.concat(chunks.map((chunk) => (typeof chunk === "string" ? Buffer.from(chunk) : chunk)))
  )
/** One part, without the body's closing boundary. */
const part = (name: string, content: string | Uint8Array, filename?: string) =>
  bytes(
    `--${boundary}\r\ncontent-disposition: form-data; name="${name}"`,
    filename === undefined ? "" : `; filename="${filename}"\r\ncontent-type: application/gzip`,
    "\r\n\r\n",
    content,
    "\r\n"
  )
const form = (...parts: ReadonlyArray<Uint8Array>) => bytes(...parts, `--${boundary}--\r\n`)
const formType = `multipart/form-data; boundary=${boundary}`

interface Sent {
  readonly status: number
  readonly connection: string | undefined
  // biome-ignore lint/suspicious/noExplicitAny: bodies are checked field by field
  readonly body: any
}

/**
 * Sends the body with Node's client; with `declared`, that content-length and the connection held open
 * after the body, as a client still sending would. Fails when no answer comes within 5 s of the last byte.
 */
const send = (
  path: string,
  body: Uint8Array,
  /** `type: null` sends no content-type. */
  options: { readonly type?: string | null; readonly declared?: number; readonly chunked?: boolean } = {}
) =>
  new Promise<Sent>((resolve, reject) => {
    const headers: Record<string, string | number> = { authorization: `Bearer ${server.admin}` }
    if (options.type !== null) headers["content-type"] = options.type ?? formType
    if (options.chunked === true) headers["transfer-encoding"] = "chunked"
    else headers["content-length"] = options.declared ?? body.length
    let timer: NodeJS.Timeout | undefined
    const request = httpRequest(`${server.url}${path}`, { method: "POST", headers }, (response) => {
      let text = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => {
        text += chunk
      })
      response.on("end", () => {
        clearTimeout(timer)
        request.destroy()
        resolve({
          status: response.statusCode ?? 0,
          connection: response.headers.connection,
          body: text === "" ? text : JSON.parse(text)
        })
      })
    })
    request.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    const started = () => {
      timer = setTimeout(() => {
        request.destroy()
        reject(new Error(`no answer within ${answerWithinMs} ms of the last byte`))
      }, answerWithinMs)
    }
    if (options.declared === undefined) request.end(body, started)
    else request.write(body, started)
  })

interface Route {
  readonly name: string
  /** A fresh target: an archive version waiting for its upload, or a deployment. */
  readonly target: () => Promise<string>
  /** What the route stored, as its answer shows it: the archive's SHA-256, or its size. */
  readonly stored: (body: Sent["body"]) => string
  readonly original: (archive: Uint8Array) => string
}

const routes: ReadonlyArray<Route> = [
  {
    name: "POST /api/app-versions/{id}/archive",
    target: async () => {
      const { app } = await workspaceWithApp(server)
      const version = await call(server, "POST", "/api/app-versions", {
        body: { appId: app.id, source: { type: "archive" } }
      })
      return `/api/app-versions/${version.body.id}/archive`
    },
    stored: (body) => body.commitSha,
    original: (archive) => createHash("sha256").update(archive).digest("hex")
  },
  {
    name: "POST /api/v1/deployments/{id}/upload",
    target: async () => {
      const { workspace } = await workspaceWithApp(server)
      const deployment = await call(server, "POST", "/api/v1/deployments", {
        body: {
          name: "Uploads",
          subdomain: `up-${Math.random().toString(36).slice(2, 10)}`,
          workspace_id: workspace.id
        }
      })
      return `/api/v1/deployments/${deployment.body.id}/upload`
    },
    stored: (body) => String(body.size),
    original: (archive) => String(archive.length)
  }
]

const refused = (sent: Sent, status: number, message: RegExp) => {
  expect(sent.status, JSON.stringify(sent.body)).toBe(status)
  expect(sent.body).toEqual({
    error: status === 413 ? "payload_too_large" : "invalid_archive",
    message: expect.stringMatching(message)
  })
}

describe("http › uploads › a gzip body (app versions)", () => {
  it("refuses a declared size over the cap at once, and a body past it", async () => {
    const type = "application/gzip"
    const archive = archiveOf({ Dockerfile: "FROM busybox\n" })
    const declared = await send(await routes[0]!.target(), archive, { type, declared: maxArchiveBytes + 1 })
    refused(declared, 413, /larger than [\d.]+ MiB/)
    const big = archiveOf({ noise: randomBytes(2 * maxArchiveBytes) })
    refused(await send(await routes[0]!.target(), big, { type, chunked: true }), 413, /larger than 2 MiB/)
  })
})

describe("http › uploads › a deployment's refused upload", () => {
  it("leaves no app version behind: the archive is stored before its version is made", async () => {
    const path = await routes[1]!.target()
    refused(await send(path, form(part("note", "hello"))), 400, /unexpected part "note"/)
    const app = Id.fromUuid("app", path.split("/")[4]!)
    const versions = await call(server, "GET", `/api/app-versions?app_id=${app}`)
    expect([versions.status, versions.body.data]).toEqual([200, []])
  })
})

describe.each(routes)("http › uploads › $name", (route) => {
  it("stores a good upload: the archive part alone", async () => {
    const archive = archiveOf({ Dockerfile: "FROM busybox\n" })
    const sent = await send(await route.target(), form(part("archive", archive, "app.tar.gz")))
    expect(sent.status, JSON.stringify(sent.body)).toBe(200)
    expect(route.stored(sent.body)).toBe(route.original(archive))
  })

  it("stores an upload larger than the 1 MiB that JSON bodies get", async () => {
    const archive = archiveOf({ Dockerfile: "FROM busybox\n", noise: randomBytes(1536 * 1024) })
    const sent = await send(await route.target(), form(part("archive", archive, "app.tar.gz")))
    expect(sent.status, JSON.stringify(sent.body)).toBe(200)
    expect(route.stored(sent.body)).toBe(route.original(archive))
  })

  it("takes a dockerfile part before the archive, and stores the archive with that Dockerfile", async () => {
    const archive = archiveOf({ Dockerfile: "FROM busybox\n" })
    const body = form(part("dockerfile", "FROM busybox\nRUN true\n"), part("archive", archive, "app.tar.gz"))
    const sent = await send(await route.target(), body)
    expect(sent.status, JSON.stringify(sent.body)).toBe(200)
    expect(route.stored(sent.body)).not.toBe(route.original(archive))
  })

  it("refuses a part it does not take, before the archive or after it, naming the part", async () => {
    const archive = archiveOf({ Dockerfile: "FROM busybox\n" })
    refused(
      await send(await route.target(), form(part("note", "hello"), part("archive", archive, "app.tar.gz"))),
      400,
      /^unexpected part "note"/
    )
    refused(
      await send(
        await route.target(),
        form(part("archive", archive, "app.tar.gz"), part("dockerfile", "FROM busybox\n"))
      ),
      400,
      /^send the dockerfile part before the archive part$/
    )
  })

  it("refuses a body without the archive part, or with one that is not a file", async () => {
    refused(
      await send(await route.target(), form(part("dockerfile", "FROM busybox\n"))),
      400,
      /no file part named archive/
    )
    refused(await send(await route.target(), form()), 400, /no file part named archive/)
    refused(await send(await route.target(), form(part("archive", "text"))), 400, /must be a file/)
  })

  it("refuses a multipart body without a boundary", async () => {
    const archive = archiveOf({ Dockerfile: "FROM busybox\n" })
    refused(
      await send(await route.target(), form(part("archive", archive, "a.tgz")), {
        type: "multipart/form-data"
      }),
      400,
      /no multipart boundary/
    )
  })

  it("refuses a body cut off inside a part, in its headers or in its content", async () => {
    const archive = archiveOf({ Dockerfile: "FROM busybox\n" })
    const whole = part("archive", archive, "a.tgz")
    refused(await send(await route.target(), whole.subarray(0, 40)), 400, /ends inside a part/)
    // Cut inside the content, or only the closing boundary missing: the parser ends such a file as if it
    // were whole, short of the bytes it held back, so the archive check is what sees it cut.
    for (const cut of [whole.subarray(0, whole.length - 20), whole]) {
      refused(await send(await route.target(), cut), 400, /ends inside a part|truncated/)
    }
  })

  it("refuses a declared size over the cap at once, without waiting for the body", async () => {
    const archive = archiveOf({ Dockerfile: "FROM busybox\n" })
    const sent = await send(await route.target(), part("archive", archive, "a.tgz"), {
      declared: 64 * 1024 * 1024
    })
    refused(sent, 413, /larger than [\d.]+ MiB/)
    expect(sent.connection).toBe("close")
  })

  it("refuses an archive past the cap, and a dockerfile past 1 MiB, sent without a length", async () => {
    const big = archiveOf({ Dockerfile: "FROM busybox\n", noise: randomBytes(2 * maxArchiveBytes) })
    refused(
      await send(await route.target(), form(part("archive", big, "big.tgz")), { chunked: true }),
      413,
      /larger than 2 MiB/
    )
    const archive = archiveOf({ Dockerfile: "FROM busybox\n" })
    for (const dockerfile of [
      part("dockerfile", "#".repeat(1024 * 1024 + 1), "Dockerfile"),
      part("dockerfile", "#".repeat(1024 * 1024 + 1))
    ]) {
      refused(
        await send(await route.target(), form(dockerfile, part("archive", archive, "a.tgz")), {
          chunked: true
        }),
        413,
        /larger than 1 MiB/
      )
    }
  })

  it("refuses a part after the archive, naming it, and a second archive", async () => {
    const archive = archiveOf({ Dockerfile: "FROM busybox\n" })
    const first = part("archive", archive, "app.tar.gz")
    refused(
      await send(await route.target(), form(first, part("note", "hello"))),
      400,
      /^part "note" comes after the archive/
    )
    refused(await send(await route.target(), form(first, first)), 400, /^one archive part only$/)
  })

  it("answers a body without a content-type with 415 at once, without reading it", async () => {
    const sent = await send(await route.target(), bytes("not yet"), {
      type: null,
      declared: 64 * 1024 * 1024
    })
    expect([sent.status, sent.body.error]).toEqual([415, "unsupported_media_type"])
  })

  it("still answers the next upload after a client went away inside a part", async () => {
    const target = await route.target()
    const archive = archiveOf({ Dockerfile: "FROM busybox\n" })
    const whole = part("archive", archive, "a.tgz")
    await new Promise<void>((resolve) => {
      const request = httpRequest(`${server.url}${target}`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${server.admin}`,
          "content-type": formType,
          "content-length": whole.length + 100
        }
      })
      request.on("error", () => resolve())
      request.write(whole.subarray(0, whole.length - 10), () => {
        setTimeout(() => {
          request.destroy()
          resolve()
        }, 200)
      })
    })
    const sent = await send(target, form(part("archive", archive, "a.tgz")))
    expect(sent.status, JSON.stringify(sent.body)).toBe(200)
  })
})
