/**
 * The surface around the endpoints: limits, unknown routes, unreadable bodies and failures in the one
 * error body; the request id; OpenAPI and the offline reference page; and the other two ways to mount
 * Kiln (a web handler, routes in a host's router), under a prefix.
 */

import { mkdtempSync, rmSync } from "node:fs"
import { request as httpRequest } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Authenticator, Storage } from "@kiln/core"
import { KilnHttp } from "@kiln/http"
import Database from "better-sqlite3"
import { Effect, Layer, ManagedRuntime } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, services, startServer, type TestServer } from "./fixtures/server.ts"

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

describe("http › limits and errors", () => {
  it("answers an unknown route with 404 in the error body, with a request id like every response", async () => {
    const reply = await call(server, "GET", "/api/nothing-here")
    expect(reply.status).toBe(404)
    expect(reply.body).toEqual({ error: "not_found", message: "no route for GET /api/nothing-here" })
    expect(reply.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/)
    expect((await call(server, "GET", "/api/builds")).headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/)
  })

  it("refuses a URL over 8 KiB (414), a body over 1 MiB with or without a length (413), and large headers (431)", async () => {
    const longUrl = await call(server, "GET", `/api/builds?filter=${"a".repeat(9000)}`)
    expect(longUrl.status).toBe(414)
    expect(longUrl.body).toEqual({ error: "uri_too_long", message: expect.any(String) })
    const body = JSON.stringify({ appVersionId: "x".repeat(1024 * 1024) })
    const sized = await call(server, "POST", "/api/builds", {
      body,
      headers: { "content-type": "application/json" }
    })
    expect(sized.status).toBe(413)
    expect(sized.body.error).toBe("payload_too_large")
    const chunked = await fetch(`${server.url}/api/builds`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.admin}`, "content-type": "application/json" },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(body))
          controller.close()
        }
      }),
      duplex: "half"
    } as RequestInit)
    expect(chunked.status).toBe(413)
    expect(((await chunked.json()) as { error: string }).error).toBe("payload_too_large")
    // Node refuses oversized headers itself, before any route runs; the server still answers in the error body.
    const refused = await new Promise<{ status: number | undefined; text: string }>((resolve, reject) => {
      const url = new URL(`${server.url}/api/builds`)
      httpRequest(url, { headers: { "x-padding": "p".repeat(20 * 1024) } }, (response) => {
        let text = ""
        response.on("data", (chunk) => {
          text += chunk
        })
        response.on("end", () => resolve({ status: response.statusCode, text }))
      })
        .on("error", reject)
        .end()
    })
    expect(refused.status).toBe(431)
    expect(JSON.parse(refused.text)).toEqual({ error: "headers_too_large", message: expect.any(String) })
  })

  it("answers unreadable bodies and other media types in the error body", async () => {
    const broken = await call(server, "POST", "/api/workspaces", {
      body: "{",
      headers: { "content-type": "application/json" }
    })
    expect(broken.status).toBe(400)
    expect(broken.body).toMatchObject({
      error: "invalid_request",
      message: "payload: expected a valid JSON body"
    })
    const text = await call(server, "POST", "/api/workspaces", {
      body: "name=x",
      headers: { "content-type": "text/plain" }
    })
    expect(text.status).toBe(415)
    expect(text.body).toEqual({ error: "unsupported_media_type", message: expect.any(String) })
  })

  it("answers a known path asked with another method with 405 and Allow, in each surface's error body", async () => {
    const uuid = "0190a000-0000-7000-8000-000000000000"
    const refusals = [
      ["PUT", "/api/builds", "GET, HEAD, POST"],
      ["DELETE", "/api/builds/bld_01jz0000000000000000000000/logs?limit=1", "GET, HEAD"],
      ["POST", "/api/builds/bld_01jz0000000000000000000000/logs/stream", "GET, HEAD"],
      ["GET", "/api/events/push", "POST"],
      ["POST", "/api/docs", "GET, HEAD"],
      ["DELETE", "/api/v1/deployments", "GET, HEAD, POST"],
      ["GET", `/api/v1/deployments/${uuid}/upload`, "POST"]
    ] as const
    for (const [method, path, allow] of refusals) {
      const reply = await call(server, method, path)
      expect([method, path, reply.status, reply.headers.get("allow")]).toEqual([method, path, 405, allow])
      expect(reply.body).toEqual({
        error: "method_not_allowed",
        message: `${path.split("?")[0]} does not take ${method}: it takes ${allow}`
      })
    }
    const accounts = await call(server, "POST", `/accounts/${uuid}/builds/builds/${uuid}/cancel`)
    expect([accounts.status, accounts.headers.get("allow")]).toEqual([405, "PUT"])
    expect(accounts.body).toMatchObject({
      success: false,
      errors: [{ message: expect.stringMatching(/does not take POST: it takes PUT$/) }],
      result: null
    })
    expect((await call(server, "PUT", "/api/nothing-here")).status).toBe(404)
  })

  it("answers a storage failure with 500 and only a request id: no SQL, no stack, no driver text", async () => {
    const broken = await startServer()
    try {
      // Break the database under the server: its next read fails inside the driver.
      const db = new Database(join(broken.dir, "kiln.db"))
      db.exec("DROP TABLE builds")
      db.close()
      const reply = await call(broken, "GET", "/api/builds")
      expect(reply.status).toBe(500)
      expect(reply.body).toEqual({ error: "internal", requestId: reply.headers.get("x-request-id") })
      expect(reply.text).not.toMatch(/builds|sqlite|table|at /i)
    } finally {
      await broken.close()
    }
  })
  it("answers an answer that fails its own schema with 500, not a 400 that blames the request", async () => {
    // Stored behind the API's back: a name longer than the API allows cannot be encoded in its answer.
    const workspace = await server.run(
      Effect.flatMap(Storage.Storage, (storage) => storage.createWorkspace({ name: "x".repeat(300) }))
    )
    const reply = await call(server, "GET", `/api/workspaces/${workspace.id}`)
    expect(reply.status).toBe(500)
    expect(reply.body).toEqual({ error: "internal", requestId: reply.headers.get("x-request-id") })
  })
})

describe("http › OpenAPI and the reference page", () => {
  it("documents every endpoint in /api/openapi.json", async () => {
    const reply = await fetch(`${server.url}/api/openapi.json`)
    expect(reply.status).toBe(200)
    // biome-ignore lint/suspicious/noExplicitAny: the document is checked by shape
    const document = (await reply.json()) as any
    expect(document.info).toMatchObject({ title: "Kiln", version: "0.1.0" })
    const operations = Object.entries(document.paths as Record<string, Record<string, unknown>>).flatMap(
      ([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`)
    )
    expect(operations.sort()).toEqual(
      [
        "GET /api/builds",
        "POST /api/builds",
        "GET /api/builds/{id}",
        "POST /api/builds/{id}/cancel",
        "POST /api/builds/{id}/redeploy",
        "GET /api/builds/{id}/logs",
        "GET /api/builds/{id}/logs/stream",
        "POST /api/builds/{id}/logs/ticket",
        "GET /api/workspaces",
        "POST /api/workspaces",
        "GET /api/workspaces/{id}",
        "GET /api/workspaces/{id}/push-secret",
        "POST /api/events/push",
        "GET /api/apps",
        "POST /api/apps",
        "GET /api/apps/{id}",
        "GET /api/app-versions",
        "POST /api/app-versions",
        "GET /api/app-versions/{id}",
        "POST /api/app-versions/{id}/archive",
        "GET /api/tokens",
        "POST /api/tokens",
        "GET /api/tokens/{id}",
        "DELETE /api/tokens/{id}",
        "GET /api/events",
        "GET /api/events/stream",
        "GET /healthz",
        "GET /readyz",
        "POST /api/webhooks",
        "GET /api/webhooks",
        "GET /api/webhooks/{id}",
        "PATCH /api/webhooks/{id}",
        "DELETE /api/webhooks/{id}",
        "POST /api/webhooks/{id}/rotate-secret",
        "GET /api/webhooks/{id}/deliveries",
        "POST /api/webhooks/{id}/deliveries/{deliveryId}/redeliver",
        "POST /api/webhooks/{id}/ping"
      ].sort()
    )
    expect(Object.keys(document.components.securitySchemes)).toEqual(["bearer"])
  })

  it("documents each dialect in a document of its own", async () => {
    const operations = async (path: string) => {
      // biome-ignore lint/suspicious/noExplicitAny: the document is checked by shape
      const document = (await (await fetch(`${server.url}${path}`)).json()) as any
      return Object.entries(document.paths as Record<string, Record<string, unknown>>)
        .flatMap(([route, methods]) =>
          Object.keys(methods).map((method) => `${method.toUpperCase()} ${route}`)
        )
        .sort()
    }
    expect(await operations("/api/v1/openapi.json")).toEqual(
      [
        "GET /api/v1/deployments",
        "POST /api/v1/deployments",
        "GET /api/v1/deployments/{deployment_id}",
        "POST /api/v1/deployments/{deployment_id}/upload",
        "POST /api/v1/deployments/{deployment_id}/deploy",
        "GET /api/v1/deployments/{deployment_id}/builds",
        "GET /api/v1/deployments/{deployment_id}/builds/{build_id}",
        "GET /api/v1/deployments/{deployment_id}/builds/{build_id}/logs",
        "GET /api/v1/deployments/{deployment_id}/builds/{build_id}/logs/stream",
        "POST /api/v1/deployments/{deployment_id}/builds/{build_id}/logs/ticket"
      ].sort()
    )
    expect(await operations("/accounts/openapi.json")).toEqual(
      [
        "GET /accounts/{account_id}/builds/builds",
        "GET /accounts/{account_id}/builds/builds/latest",
        "GET /accounts/{account_id}/builds/builds/{build_uuid}",
        "PUT /accounts/{account_id}/builds/builds/{build_uuid}/cancel",
        "GET /accounts/{account_id}/builds/builds/{build_uuid}/logs",
        "GET /accounts/{account_id}/builds/workers/{external_script_id}/builds",
        "POST /accounts/{account_id}/builds/triggers",
        "PATCH /accounts/{account_id}/builds/triggers/{trigger_uuid}",
        "DELETE /accounts/{account_id}/builds/triggers/{trigger_uuid}",
        "GET /accounts/{account_id}/builds/workers/{external_script_id}/triggers",
        "POST /accounts/{account_id}/builds/triggers/{trigger_uuid}/builds"
      ].sort()
    )
  })

  it("serves a reference page that loads nothing from the network", async () => {
    const reply = await fetch(`${server.url}/api/docs`)
    expect(reply.status).toBe(200)
    expect(reply.headers.get("content-type")).toMatch(/^text\/html/)
    const html = await reply.text()
    expect(html.length).toBeGreaterThan(100_000)
    expect(html).not.toMatch(/<script[^>]+src=["']?https?:/i)
    expect(html).not.toMatch(/<link[^>]+href=["']?https?:/i)
    // Scalar fetches its default fonts unless told not to.
    expect(html.includes('"withDefaultFonts":false')).toBe(true)
  })

  it("puts all three documents on the reference page, each as it is served", async () => {
    const html = await (await fetch(`${server.url}/api/docs`)).text()
    for (const [path, title, operation] of [
      ["/api/openapi.json", "Kiln", "/api/builds/{id}/cancel"],
      ["/api/v1/openapi.json", "Kiln — deployments dialect", "/api/v1/deployments/{deployment_id}/upload"],
      ["/accounts/openapi.json", "Kiln — accounts dialect", "/accounts/{account_id}/builds/triggers"]
    ] as const) {
      const served = await fetch(`${server.url}${path}`)
      expect([path, served.status]).toEqual([path, 200])
      // biome-ignore lint/suspicious/noExplicitAny: the document is checked by shape
      const document = (await served.json()) as any
      expect(document.info.title).toBe(title)
      expect(Object.keys(document.paths)).toContain(operation)
      // The page carries the same document, inline (Scalar's escaping aside).
      expect([path, html.includes(`"title":"${title}"`), html.includes(`"${operation}":`)]).toEqual([
        path,
        true,
        true
      ])
    }
    expect(html.match(/"slug":"(kiln|deployments|accounts)"/g)).toEqual([
      '"slug":"kiln"',
      '"slug":"deployments"',
      '"slug":"accounts"'
    ])
  })
})

describe("http › mounting", () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-http-mount-"))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it("serves the API as a web-standard handler under a prefix", async () => {
    const layer = services(dir)
    const runtime = ManagedRuntime.make(layer)
    const { secret } = await runtime.runPromise(
      Authenticator.issueToken({ name: "web", role: "admin", workspaceIds: "*", expiresAt: null })
    )
    const { handler, dispose } = KilnHttp.toWebHandler(layer, { prefix: "/ci" })
    try {
      const auth = { authorization: `Bearer ${secret}` }
      const created = await handler(
        new Request("http://host/ci/api/workspaces", {
          method: "POST",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify({ name: "Mounted" })
        })
      )
      expect(created.status).toBe(201)
      const listed = await handler(new Request("http://host/ci/api/workspaces", { headers: auth }))
      expect(((await listed.json()) as { data: Array<{ name: string }> }).data.map((w) => w.name)).toContain(
        "Mounted"
      )
      expect((await handler(new Request("http://host/api/workspaces", { headers: auth }))).status).toBe(404)
      expect((await handler(new Request("http://host/ci/api/openapi.json"))).status).toBe(200)
      const method = await handler(
        new Request("http://host/ci/api/workspaces", { method: "PUT", headers: auth })
      )
      expect([method.status, method.headers.get("allow")]).toEqual([405, "GET, HEAD, POST"])
    } finally {
      await dispose()
      await runtime.dispose()
    }
  })

  it("leaves out the dialects a host does not want", async () => {
    const layer = services(dir)
    const { handler, dispose } = KilnHttp.toWebHandler(layer, {
      dialects: { deployments: false, accounts: false }
    })
    try {
      expect((await handler(new Request("http://host/api/openapi.json"))).status).toBe(200)
      const page = await (await handler(new Request("http://host/api/docs"))).text()
      expect(page.match(/"slug":"(kiln|deployments|accounts)"/g)).toEqual(['"slug":"kiln"'])
      for (const path of ["/api/v1/openapi.json", "/api/v1/deployments", "/accounts/openapi.json"]) {
        expect((await handler(new Request(`http://host${path}`))).status, path).toBe(404)
        expect((await handler(new Request(`http://host${path}`, { method: "PUT" }))).status, path).toBe(404)
      }
    } finally {
      await dispose()
    }
  })

  it("adds its routes to a host's router beside the host's own, which the error handling covers too", async () => {
    const own = HttpRouter.add("GET", "/health", Effect.succeed(HttpServerResponse.text("ok")))
    const broken = HttpRouter.add("GET", "/broken", Effect.die(new Error("SELECT secret FROM somewhere")))
    const { handler, dispose } = HttpRouter.toWebHandler(
      Layer.mergeAll(own, broken, KilnHttp.layer({ prefix: "/ci" })).pipe(
        Layer.provide(services(dir)),
        Layer.provide(HttpServer.layerServices)
      ),
      { disableLogger: true }
    )
    try {
      expect(await (await handler(new Request("http://host/health"))).text()).toBe("ok")
      expect((await handler(new Request("http://host/ci/api/builds"))).status).toBe(401)
      const failed = await handler(new Request("http://host/broken"))
      expect(failed.status).toBe(500)
      expect(await failed.json()).toEqual({
        error: "internal",
        requestId: failed.headers.get("x-request-id")
      })
    } finally {
      await dispose()
    }
  })
})
