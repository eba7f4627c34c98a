/**
 * `GET /healthz` (the process answers) and `GET /readyz` (the storage answers, and the runner's engine
 * when the host runs builds in this process), unauthenticated, for load balancers and orchestrators.
 *
 * A readiness answer is shared by the probes that arrive while it is taken and kept for a second, so any
 * number of probes costs the store and the engine one round trip a second at most; each check has
 * `checkTimeout` to answer. A check that fails says only that it did: the cause (a host, a port, a socket
 * path) goes to the log, not to an unauthenticated caller.
 */
import { Runner, Storage } from "@kiln/core"
import { Effect, Option } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { healthPath, readyPath } from "./api/health.ts"

/** How long a check may take before the probe counts it as not answering (the OpenAPI text says 2 s). */
const checkTimeout = "2 seconds"

type CheckStatus = "ok" | "unavailable" | "timed_out"

const probe = (name: string, check: Effect.Effect<void, unknown>): Effect.Effect<CheckStatus> =>
  check.pipe(
    Effect.as<CheckStatus>("ok"),
    Effect.timeoutOrElse({ duration: checkTimeout, orElse: () => Effect.succeed<CheckStatus>("timed_out") }),
    Effect.catch((error) =>
      Effect.as(Effect.logWarning(`readiness: ${name} did not answer`, error), "unavailable" as const)
    )
  )

export const route = HttpRouter.use((router) =>
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const runner = yield* Effect.serviceOption(Runner.Runner)
    const checks: ReadonlyArray<readonly [string, Effect.Effect<void, unknown>]> = [
      ["storage", storage.ping],
      ...Option.match(runner, { onNone: () => [], onSome: ({ ping }) => [["runner", ping] as const] })
    ]
    const ready = yield* Effect.cachedWithTTL(
      Effect.map(
        Effect.forEach(
          checks,
          ([name, check]) => Effect.map(probe(name, check), (status) => [name, status] as const),
          {
            concurrency: "unbounded"
          }
        ),
        (answers) => {
          const ok = answers.every(([, status]) => status === "ok")
          return HttpServerResponse.jsonUnsafe(
            { status: ok ? "ready" : "unavailable", checks: Object.fromEntries(answers) },
            { status: ok ? 200 : 503, headers: { "cache-control": "no-store" } }
          )
        }
      ),
      "1 second"
    )
    yield* router.add(
      "GET",
      healthPath,
      Effect.succeed(
        HttpServerResponse.jsonUnsafe({ status: "ok" }, { headers: { "cache-control": "no-store" } })
      )
    )
    yield* router.add("GET", readyPath, ready)
  })
)
