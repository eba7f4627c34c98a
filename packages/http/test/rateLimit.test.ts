/**
 * Rate limits on the real server: a request with an accepted token counts against its token, any other
 * (no token, a wrong one) against its address; past a limit `429` with `Retry-After`, and every counted
 * answer says where it stands in `RateLimit` and `RateLimit-Policy`. The probes are not counted. The
 * limiter's own bounds (its options, how many windows it keeps) are checked as logic.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as RateLimit from "../src/internal/rateLimit.ts"
import { call, startServer, type TestServer } from "./fixtures/server.ts"

const fields = (reply: { headers: Headers }) => ({
  policy: reply.headers.get("ratelimit-policy"),
  state: reply.headers.get("ratelimit"),
  retryAfter: reply.headers.get("retry-after")
})

describe("rate limits", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer({
      rateLimit: { perAddress: { limit: 5, windowSeconds: 60 }, perToken: { limit: 8, windowSeconds: 60 } }
    })
  })
  afterAll(() => server?.close())

  it("limits requests without a token, and with a wrong one, per address; a token has its own; probes pass", async () => {
    for (let n = 1; n <= 5; n++) {
      const reply = await call(server, "GET", "/api/workspaces", {
        token: n % 2 === 0 ? undefined : "kiln_pat_wrong"
      })
      expect([reply.status, fields(reply).policy, fields(reply).state]).toEqual([
        401,
        `"address";q=5;w=60`,
        expect.stringMatching(new RegExp(`^"address";r=${5 - n};t=(60|59)$`))
      ])
    }
    const refused = await call(server, "GET", "/api/workspaces", { token: undefined })
    expect(refused.status).toBe(429)
    expect(refused.body).toEqual({
      error: "rate_limited",
      message: expect.stringMatching(/^too many requests: try again in \d+ s$/)
    })
    expect(Number(fields(refused).retryAfter)).toBeGreaterThan(50)
    expect(fields(refused).state).toMatch(/^"address";r=0;t=\d+$/)
    // Guessing tokens counts against the address too.
    const guess = `kiln_pat_${"A".repeat(43)}`
    expect((await call(server, "GET", "/api/workspaces", { token: guess })).status).toBe(429)

    // The admin token is counted on its own, from the same address.
    for (let n = 1; n <= 8; n++) {
      const reply = await call(server, "GET", "/api/workspaces")
      expect([reply.status, fields(reply).policy]).toEqual([200, `"token";q=8;w=60`])
    }
    const overToken = await call(server, "GET", "/api/workspaces")
    expect([overToken.status, fields(overToken).state?.startsWith(`"token";r=0;`)]).toEqual([429, true])
    // Another token's window is its own.
    const other = await server.token("read", "*")
    expect((await call(server, "GET", "/api/workspaces", { token: other })).status).toBe(200)
    // Probes are never counted: an orchestrator's checks must not be refused.
    expect((await call(server, "GET", "/healthz", { token: undefined })).status).toBe(200)
    expect((await call(server, "GET", "/readyz", { token: undefined })).status).toBe(200)
  })

  it("opens a new window once the last one ends", async () => {
    const short = await startServer({ rateLimit: { perAddress: { limit: 2, windowSeconds: 1 } } })
    try {
      const statuses = async () => {
        const answers = []
        for (let n = 0; n < 3; n++)
          answers.push((await call(short, "GET", "/api/openapi.json", { token: undefined })).status)
        return answers
      }
      expect(await statuses()).toEqual([200, 200, 429])
      await new Promise((done) => setTimeout(done, 1100))
      expect(await statuses()).toEqual([200, 200, 429])
    } finally {
      await short.close()
    }
  })

  it("refuses a policy that cannot be met, saying why", () => {
    expect(RateLimit.make({ perToken: { limit: 0, windowSeconds: 60 } })).toBe(
      `rate limit per token: limit must be a whole number ≥ 1 and windowSeconds > 0, not {"limit":0,"windowSeconds":60}`
    )
    expect(typeof RateLimit.make({ perAddress: { limit: 10, windowSeconds: 0 } })).toBe("string")
  })

  it("keeps at most maxKeys windows, dropping the oldest", () => {
    const limiter = RateLimit.make({
      perAddress: { limit: 1, windowSeconds: 60 },
      maxKeys: 2
    }) as RateLimit.Limiter
    expect(limiter.count("address", "a", 0)?.allowed).toBe(true)
    expect(limiter.count("address", "a", 1)?.allowed).toBe(false)
    limiter.count("address", "b", 2)
    limiter.count("address", "c", 3)
    // "a" was the oldest: its window went to make room, so it starts afresh.
    expect(limiter.count("address", "a", 4)?.allowed).toBe(true)
    expect(limiter.count("address", "c", 5)?.allowed).toBe(false)
  })
})
