/**
 * Kiln's HTTP surface, to mount three ways: as routes in an Effect `HttpRouter` (`layer`), as a
 * web-standard `(Request) => Promise<Response>` handler (`toWebHandler`), or as a Node server of its own
 * (`layerServer`). Each takes a path `prefix`, so a host can serve Kiln under `/ci` beside its own routes.
 *
 * Routes: the canonical API under `/api` (see `Api.ts`), the WebSockets of a build's log
 * (`/api/builds/{id}/logs/stream`) and of the event feed (`/api/events/stream`), `GET /api/openapi.json`,
 * a reference page at `/api/docs`, with the document of every surface mounted, that loads nothing from
 * the network, and the unauthenticated probes `GET /healthz` and `GET /readyz` (the storage answers, and
 * the runner when the host provides one). Every response carries an `x-request-id`; a 5xx body carries
 * only that id, the cause goes to the log.
 */
import { randomUUID } from "node:crypto"
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Authenticator, type SourceStore, type Storage } from "@kiln/core"
import { ByteSize, Cause, Clock, Effect, Layer, Option, type Types } from "effect"
import {
  HttpIncomingMessage,
  HttpRouter,
  HttpServer,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "effect/http"
import { HttpApiBuilder, HttpApiScalar, OpenApi } from "effect/http-api"
import * as AccountsApi from "./AccountsApi.ts"
import { DeploymentsApi, KilnApi, logStreamProtocol } from "./Api.ts"
import * as AccountsBuilds from "./internal/accountsBuilds.ts"
import * as AccountsRequests from "./internal/accountsRequests.ts"
import * as AccountsTriggers from "./internal/accountsTriggers.ts"
import * as AllowedMethods from "./internal/allowedMethods.ts"
import * as Apps from "./internal/apps.ts"
import * as AppVersions from "./internal/appVersions.ts"
import * as ArchiveUpload from "./internal/archiveUpload.ts"
import * as Authorization from "./internal/authorization.ts"
import * as Builds from "./internal/builds.ts"
import * as Dashboard from "./internal/dashboard.ts"
import * as Deployments from "./internal/deployments.ts"
import * as EventStream from "./internal/eventStream.ts"
import * as Events from "./internal/events.ts"
import { credentialOf } from "./internal/follower.ts"
import * as Health from "./internal/health.ts"
import * as LogStream from "./internal/logStream.ts"
import * as MetricsRoute from "./internal/metricsRoute.ts"
import * as Push from "./internal/pushEvents.ts"
import * as RateLimit from "./internal/rateLimit.ts"
import * as RequestErrors from "./internal/requestErrors.ts"
import * as Sessions from "./internal/sessions.ts"
import * as Tokens from "./internal/tokens.ts"
import * as Webhooks from "./internal/webhooks.ts"
import * as Workspaces from "./internal/workspaces.ts"
import * as KilnMetrics from "./KilnMetrics.ts"

export interface Options {
  /** Where Kiln's routes live in the host's URL space, e.g. `/ci`; default at the root. */
  readonly prefix?: string | undefined
  /** The other documented API shapes, served beside the canonical one unless left out here. */
  readonly dialects?:
    | { readonly deployments?: boolean | undefined; readonly accounts?: boolean | undefined }
    | undefined
  /**
   * How far a WebSocket follower (of a build's log or of the event feed) may fall behind before Kiln waits
   * for it, and closes it if it stalls; how often it checks that the follower's token still holds.
   */
  readonly logStream?: LogStreamLimits | undefined
  /**
   * Requests allowed per token, and per client address for requests without an accepted token, in each
   * process (default 6,000 and 600 a minute); past them `429` with `Retry-After`. `false` for none.
   */
  readonly rateLimit?: RateLimitOptions | false | undefined
  /**
   * Serves `GET /metrics` (Prometheus text) to a scraper sending this token; needs `KilnMetrics.layer` in
   * the context. Off unless given.
   */
  readonly metrics?: MetricsRoute.MetricsOptions | undefined
  /**
   * Serves the web dashboard at `/ui/` (under the prefix), with its sign-in: a token exchanged for a
   * session cookie. Off unless asked for.
   */
  readonly dashboard?: boolean | undefined
}

export type RateLimitOptions = RateLimit.Options

export type LogStreamLimits = LogStream.Limits

/** What the routes need from the host: Kiln's storage, its source store and an authenticator. */
export type Requirements = Storage.Storage | SourceStore.SourceStore | Authenticator.Authenticator

export const maxUrlLength = 8 * 1024
/** JSON bodies; archive uploads stream to the source store, which has its own (larger) cap. */
export const maxBodyBytes = 1024 * 1024

/** The HTTP server's own error in a cause, failed or died (HttpApi reads bodies with `orDie`). */
const serverErrorOf = (cause: Cause.Cause<unknown>) => {
  for (const reason of cause.reasons) {
    const error = Cause.isFailReason(reason)
      ? reason.error
      : Cause.isDieReason(reason)
        ? reason.defect
        : undefined
    if (error instanceof HttpServerError.HttpServerError) return error.reason
  }
  return undefined
}

const isTooLarge = (reason: HttpServerError.RequestParseError) =>
  reason.reason === "BodyTooLarge" ||
  (reason.cause instanceof Error && (reason.cause as { _tag?: unknown })._tag === "MaxBytesError")

/**
 * An error answered outside HttpApi, in the body of the surface the request is for: the accounts dialect
 * wraps every answer in its envelope, the other surfaces use `{error, message}`.
 */
type Answer = (
  status: number,
  body: { readonly error: string; readonly message?: string; readonly requestId?: string }
) => HttpServerResponse.HttpServerResponse
const answerFor = (url: string): Answer =>
  /^(\/[^?]*)?\/accounts\//.test(url)
    ? (status, body) =>
        HttpServerResponse.jsonUnsafe(
          AccountsApi.failureBody(
            status,
            body.message ?? `internal error; request id ${body.requestId ?? "unknown"}`
          ),
          { status }
        )
    : (status, body) => HttpServerResponse.jsonUnsafe(body, { status })
const tooLarge = (answer: Answer) =>
  answer(413, {
    error: "payload_too_large",
    message: `the request body is larger than ${maxBodyBytes} bytes`
  })
const bodyLimit = ByteSize.bytes(maxBodyBytes)

/**
 * What a failed request answers: a known path asked with another method (405 with `Allow`), an unknown
 * route, an unreadable body, or a 500 that carries only its id.
 */
const failure = (
  request: HttpServerRequest.HttpServerRequest,
  requestId: string,
  cause: Cause.Cause<unknown>,
  answer: Answer,
  allowed: (url: string) => ReadonlyArray<string>
) => {
  // The client went away (the server interrupts its request): nobody is left to answer.
  if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause)
  const reason = serverErrorOf(cause)
  if (reason?._tag === "RouteNotFound") {
    const path = request.url.split("?")[0]
    const methods = allowed(request.url)
    return Effect.succeed(
      methods.length === 0
        ? answer(404, { error: "not_found", message: `no route for ${request.method} ${path}` })
        : HttpServerResponse.setHeader(
            answer(405, {
              error: "method_not_allowed",
              message: `${path} does not take ${request.method}: it takes ${methods.join(", ")}`
            }),
            "allow",
            methods.join(", ")
          )
    )
  }
  if (reason?._tag === "RequestParseError") {
    return Effect.succeed(
      isTooLarge(reason)
        ? tooLarge(answer)
        : answer(400, { error: "invalid_request", message: "the request body could not be read" })
    )
  }
  return Effect.logError("request failed", cause).pipe(
    Effect.annotateLogs({ requestId, method: request.method, url: request.url }),
    Effect.as(answer(500, { error: "internal", requestId }))
  )
}

/** A route's effect, as a middleware gets it. */
type HttpEffect = Effect.Effect<
  HttpServerResponse.HttpServerResponse,
  unknown,
  HttpServerRequest.HttpServerRequest
>

/** The health probes, which are not rate limited: each costs at most a shared, cached check. */
const isProbe = (url: string) => /\/(healthz|readyz)(\?|$)/.test(url)

/**
 * The dashboard's page and scripts, which are not rate limited either: files held in memory, a dozen for
 * each page load, that would otherwise spend a caller's allowance before it has signed in.
 */
const isDashboardFile = (paths: AllowedMethods.Paths, request: HttpServerRequest.HttpServerRequest) =>
  paths.route(request.method, request.url) === `${Dashboard.dashboardPath}/*`

/**
 * How a request counts against the rate limits: its token's, when it comes with one the authenticator
 * accepts (its cache makes this the lookup the route then reuses) or with a dashboard session this server
 * signed, otherwise its address's.
 */
const verdictOf = (
  limiter: RateLimit.Limiter,
  authenticator: Authenticator.AuthenticatorShape,
  request: HttpServerRequest.HttpServerRequest
) => {
  const credential = credentialOf(request.headers)
  const session = Sessions.sessionOf(request)
  const token =
    credential === undefined
      ? session === undefined
        ? Effect.succeed(undefined)
        : Sessions.tokenOf(session)
      : authenticator.authenticate(credential).pipe(
          Effect.map((principal) => principal.tokenId ?? `principal:${principal.name}`),
          Effect.orElseSucceed(() => undefined)
        )
  return Effect.zipWith(token, Clock.currentTimeMillis, (key, now) =>
    key !== undefined
      ? limiter.count("token", key, now)
      : limiter.count(
          "address",
          Option.getOrElse(request.remoteAddress, () => "unknown"),
          now
        )
  )
}

/**
 * Rate limits, unknown routes, requests past the limits, unreadable bodies and defects, in the API's error
 * body, and a request id on every response. Applied to the whole router, so it also covers routes the
 * host adds. What runs on every request is written without generators.
 */
const guard = (paths: AllowedMethods.Paths, rateLimit: RateLimit.Options | false) =>
  HttpRouter.middleware(
    Effect.gen(function* () {
      const limiter = rateLimit === false ? undefined : RateLimit.make(rateLimit)
      if (typeof limiter === "string") return yield* Effect.die(new Error(`KilnHttp: ${limiter}`))
      const authenticator = yield* Authenticator.Authenticator
      const metrics = yield* Effect.serviceOption(KilnMetrics.KilnMetrics)
      // Counted by the documented path it was for: a label with a bounded set of values, whatever the URL.
      const counted = <E, R>(
        request: HttpServerRequest.HttpServerRequest,
        effect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
      ) => {
        if (Option.isNone(metrics)) return effect
        const started = performance.now()
        return Effect.tap(effect, (response) =>
          Effect.sync(() =>
            metrics.value.request(
              paths.route(request.method, request.url) ?? "other",
              request.method,
              response.status,
              (performance.now() - started) / 1000
            )
          )
        )
      }
      return (httpEffect: HttpEffect) =>
        // Every failure becomes a response here, so the remaining error type is nominal.
        HttpServerRequest.HttpServerRequest.use((request) => {
          const requestId = randomUUID()
          const answer = answerFor(request.url)
          const withId = (response: HttpServerResponse.HttpServerResponse) =>
            HttpServerResponse.setHeader(response, "x-request-id", requestId)
          const served = serve(request, httpEffect, requestId, answer, withId, paths.allowed)
          if (limiter === undefined || isProbe(request.url) || isDashboardFile(paths, request)) {
            return counted(request, served)
          }
          return counted(
            request,
            Effect.flatMap(verdictOf(limiter, authenticator, request), (verdict) =>
              verdict === undefined
                ? served
                : verdict.allowed
                  ? Effect.map(served, HttpServerResponse.setHeaders(verdict.headers))
                  : Effect.succeed(
                      HttpServerResponse.setHeaders(
                        withId(
                          answer(429, {
                            error: "rate_limited",
                            message: `too many requests: try again in ${verdict.headers["retry-after"]} s`
                          })
                        ),
                        verdict.headers
                      )
                    )
            )
          )
        }) as Effect.Effect<
          HttpServerResponse.HttpServerResponse,
          Types.unhandled,
          HttpServerRequest.HttpServerRequest
        >
    }),
    { global: true }
  )

/** A request within the limits: too long a URL or body refused, the route's answer or failure in the API's words. */
const serve = (
  request: HttpServerRequest.HttpServerRequest,
  httpEffect: HttpEffect,
  requestId: string,
  answer: Answer,
  withId: (response: HttpServerResponse.HttpServerResponse) => HttpServerResponse.HttpServerResponse,
  allowed: (url: string) => ReadonlyArray<string>
) => {
  if (request.url.length > maxUrlLength) {
    return Effect.succeed(
      withId(answer(414, { error: "uri_too_long", message: `the URL is longer than ${maxUrlLength} bytes` }))
    )
  }
  // A body's size is bounded here unless it is an archive upload, bounded by the source store's cap.
  const limited =
    request.method !== "GET" && request.method !== "HEAD" && !ArchiveUpload.isUploadPath(request.url)
  if (limited && Number(request.headers["content-length"] ?? 0) > maxBodyBytes) {
    return Effect.succeed(withId(tooLarge(answer)))
  }
  return (
    limited ? Effect.provideService(httpEffect, HttpIncomingMessage.MaxBodySize, bodyLimit) : httpEffect
  ).pipe(
    // Every line logged while the request is served names it, as its response's x-request-id does.
    Effect.annotateLogs("requestId", requestId),
    Effect.matchCauseEffect({
      onSuccess: (response) =>
        Effect.succeed(
          withId(
            // HttpApi answers a body it has no decoder for in plain text.
            response.status === 415
              ? answer(415, {
                  error: "unsupported_media_type",
                  message: `content-type ${request.headers["content-type"] ?? "(none)"} is not accepted here`
                })
              : response
          )
        ),
      onFailure: (cause) => Effect.map(failure(request, requestId, cause, answer, allowed), withId)
    })
  )
}

const handlers = Layer.mergeAll(
  Builds.layer,
  Workspaces.layer,
  Apps.layer,
  AppVersions.layer,
  Tokens.layer,
  Events.layer,
  Webhooks.layer
).pipe(Layer.provide(Authorization.layer))

const documents = {
  canonical: "/api/openapi.json",
  deployments: "/api/v1/openapi.json",
  accounts: "/accounts/openapi.json"
} as const
const docsPath = "/api/docs"

const accounts = HttpApiBuilder.layer(AccountsApi.AccountsApi, {
  openapiPath: documents.accounts
}).pipe(
  Layer.provide(
    Layer.mergeAll(AccountsBuilds.layer, AccountsTriggers.layer).pipe(
      Layer.provide(AccountsRequests.authorizationLayer)
    )
  ),
  Layer.provide(AccountsRequests.requestErrorsLayer)
)

const deployments = (options: Options) =>
  Layer.mergeAll(
    HttpApiBuilder.layer(DeploymentsApi, { openapiPath: documents.deployments }).pipe(
      Layer.provide(Deployments.layer.pipe(Layer.provide(Authorization.layer))),
      Layer.provide(RequestErrors.layer)
    ),
    LogStream.deploymentsRoute(options.logStream ?? {})
  )

/** A surface's OpenAPI document, where it is served, and how the reference page names it. */
interface Surface {
  readonly slug: string
  readonly title: string
  readonly path: string
  readonly document: OpenApi.OpenAPISpec
}

/** The surfaces a host mounts, the canonical one first. */
const surfacesOf = (options: Options): ReadonlyArray<Surface> => [
  { slug: "kiln", title: "Kiln", path: documents.canonical, document: OpenApi.fromApi(KilnApi) },
  ...(options.dialects?.deployments === false
    ? []
    : [
        {
          slug: "deployments",
          title: "Deployments dialect",
          path: documents.deployments,
          document: OpenApi.fromApi(DeploymentsApi)
        }
      ]),
  ...(options.dialects?.accounts === false
    ? []
    : [
        {
          slug: "accounts",
          title: "Accounts dialect",
          path: documents.accounts,
          document: OpenApi.fromApi(AccountsApi.AccountsApi)
        }
      ])
]

/**
 * The reference page: every mounted surface's document, each inline, so the page loads nothing (Scalar's
 * bundle is inline too, and its default fonts, which it would fetch, are off). HttpApiScalar renders one
 * API; Scalar's own `sources` option, which its type leaves out, puts the others beside it.
 */
const referencePage = (surfaces: ReadonlyArray<Surface>) =>
  HttpApiScalar.layer(KilnApi, {
    path: docsPath,
    scalar: {
      withDefaultFonts: false,
      sources: surfaces.map(({ slug, title, document }) => ({ slug, title, content: document }))
    } as HttpApiScalar.ScalarConfig
  })

const routes = (options: Options) => {
  const surfaces = surfacesOf(options)
  const paths = AllowedMethods.make(
    surfaces.map((surface) => surface.document),
    [
      docsPath,
      ...surfaces.map((surface) => surface.path),
      ...(options.metrics === undefined ? [] : [MetricsRoute.metricsPath]),
      ...(options.dashboard ? [`${Dashboard.dashboardPath}/*`] : [])
    ],
    prefixOf(options),
    options.dashboard
      ? [
          ["GET", Dashboard.sessionPath],
          ["POST", Dashboard.sessionPath],
          ["DELETE", Dashboard.sessionPath]
        ]
      : []
  )
  return Layer.mergeAll(
    HttpApiBuilder.layer(KilnApi, { openapiPath: documents.canonical }).pipe(
      Layer.provide(handlers),
      Layer.provide(RequestErrors.layer)
    ),
    options.dialects?.deployments === false ? Layer.empty : deployments(options),
    options.dialects?.accounts === false ? Layer.empty : accounts,
    LogStream.route(options.logStream ?? {}),
    EventStream.route(options.logStream ?? {}),
    Push.route,
    Health.route,
    options.metrics === undefined ? Layer.empty : MetricsRoute.route(options.metrics),
    options.dashboard ? Dashboard.route(prefixOf(options)) : Layer.empty,
    referencePage(surfaces),
    guard(paths, options.rateLimit ?? {})
  )
}

const isRoot = (prefix: string | undefined): prefix is "" | "/" | undefined =>
  prefix === undefined || prefix === "" || prefix === "/"

/** The prefix as paths are written under it: "" at the root, else without a trailing slash. */
const prefixOf = (options: Options) => (isRoot(options.prefix) ? "" : options.prefix.replace(/\/+$/, ""))

/** A router whose routes all live under `prefix`; handlers see their paths without it. */
const prefixed = (prefix: string) =>
  Layer.effect(
    HttpRouter.HttpRouter,
    Effect.map(Effect.service(HttpRouter.HttpRouter), (router) => router.prefixed(prefix))
  )

/** Kiln's routes, added to the `HttpRouter` in context (under `prefix`). */
export const layer = (options: Options = {}) =>
  isRoot(options.prefix) ? routes(options) : routes(options).pipe(Layer.provide(prefixed(options.prefix)))

/**
 * Kiln as a web-standard handler, for hosts that speak `Request`/`Response`. The log stream needs a
 * server that can upgrade connections (`layerServer`, or your own Node server with `layer`).
 */
export const toWebHandler = <E>(
  services: Layer.Layer<Requirements, E>,
  options: Options = {}
): { readonly handler: (request: Request) => Promise<Response>; readonly dispose: () => Promise<void> } => {
  const { handler, dispose } = HttpRouter.toWebHandler(
    layer(options).pipe(Layer.provide(services), Layer.provide(HttpServer.layerServices)),
    { disableLogger: true }
  )
  return { handler: (request) => handler(request), dispose }
}

export const maxHeaderBytes = 16 * 1024

/**
 * Node's server, with its own refusals (a malformed request, headers past the limit) in the API's error
 * body: Node answers those before any route runs.
 */
const makeNodeServer = () =>
  createServer({ maxHeaderSize: maxHeaderBytes }).on(
    "clientError",
    (error: NodeJS.ErrnoException, socket) => {
      if (error.code === "ECONNRESET" || !socket.writable) return socket.destroy()
      const [status, body] =
        error.code === "HPE_HEADER_OVERFLOW"
          ? [
              "431 Request Header Fields Too Large",
              { error: "headers_too_large", message: `the headers are larger than ${maxHeaderBytes} bytes` }
            ]
          : ["400 Bad Request", { error: "invalid_request", message: "the request is not valid HTTP" }]
      const json = JSON.stringify(body)
      socket.end(
        `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\nConnection: close\r\n\r\n${json}`
      )
    }
  )

export interface ServerOptions extends Options {
  readonly port?: number | undefined
  readonly host?: string | undefined
}

/**
 * Kiln on a Node HTTP server of its own. WebSocket clients that offer the `kiln` subprotocol (browsers
 * pass their token as `bearer.<token>` beside it) get `kiln` back, so the token is never echoed.
 */
export const layerServer = (options: ServerOptions = {}) =>
  HttpRouter.serve(layer(options), { disableLogger: true }).pipe(
    // The server stays in the output, so a host that asked for port 0 can read the one it got.
    Layer.provideMerge(
      NodeHttpServer.layer(makeNodeServer, {
        port: options.port ?? 8787,
        host: options.host ?? "127.0.0.1",
        websocket: {
          handleProtocols: (offered: ReadonlySet<string>) =>
            offered.has(logStreamProtocol) ? logStreamProtocol : (offered.values().next().value ?? false)
        }
      })
    )
  )
