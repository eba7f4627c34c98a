/**
 * `GET /metrics`: `KilnMetrics`'s registry in the Prometheus text format, for a scraper holding the
 * metrics token the host configured (a token of its own, not an API token: a scraper needs no workspace).
 * Mounted only when the host asks for it, with `KilnMetrics.layer` in the context.
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { Effect, Option, Redacted } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { KilnMetrics } from "../KilnMetrics.ts"
import { credentialOf } from "./follower.ts"

export const metricsPath = "/metrics"

export interface MetricsOptions {
  /** The bearer token a scraper sends (`Authorization: Bearer …`). */
  readonly token: string | Redacted.Redacted<string>
}

// Compared as digests, so neither the comparison's time nor its length says anything about the token.
const digest = (text: string) => createHash("sha256").update(text).digest()

export const route = (options: MetricsOptions) =>
  HttpRouter.use((router) =>
    Effect.gen(function* () {
      const metrics = yield* Effect.serviceOption(KilnMetrics)
      if (Option.isNone(metrics)) {
        return yield* Effect.die(
          new Error(
            "KilnHttp: the metrics option needs KilnMetrics.layer in the context, where the engine records"
          )
        )
      }
      const token = Redacted.isRedacted(options.token) ? Redacted.value(options.token) : options.token
      if (token.length < 16) {
        return yield* Effect.die(new Error("KilnHttp: the metrics token must be at least 16 characters"))
      }
      const expected = digest(token)
      yield* router.add(
        "GET",
        metricsPath,
        HttpServerRequest.HttpServerRequest.use((request) => {
          const given = credentialOf(request.headers)
          if (given === undefined || !timingSafeEqual(digest(given), expected)) {
            return Effect.succeed(
              HttpServerResponse.jsonUnsafe(
                { error: "unauthorized", message: "the metrics token is missing or wrong" },
                { status: 401, headers: { "www-authenticate": "Bearer" } }
              )
            )
          }
          return metrics.value.scrape.pipe(
            Effect.map((text) =>
              HttpServerResponse.text(text, {
                contentType: metrics.value.registry.contentType,
                headers: { "cache-control": "no-store" }
              })
            ),
            // A scrape storage cannot answer is a gap in the graph, not an error of the process.
            Effect.catchTag("StorageError", (error) =>
              Effect.as(
                Effect.logWarning("metrics: storage did not answer", error),
                HttpServerResponse.jsonUnsafe(
                  { error: "unavailable", message: "storage did not answer; try again" },
                  { status: 503 }
                )
              )
            )
          )
        })
      )
    })
  )
