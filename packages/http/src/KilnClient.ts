/**
 * A typed client for Kiln's API, made from the definition the server implements: every endpoint as a
 * method (`client.builds.create(…)`, `client.apps.list(…)`) with decoded results and typed errors, and
 * `followLogs`, a build's log over the WebSocket as a stream that resumes by itself after a dropped
 * connection, with no gap and no duplicate.
 *
 * It runs wherever `fetch` and `WebSocket` are globals (Node ≥ 22, browsers, Deno, Bun). The token
 * travels in the `Authorization` header, and on the WebSocket as the `bearer.<token>` subprotocol,
 * because browsers cannot set headers there.
 */
import { Context, Effect, Layer, Redacted, Schema, Stream } from "effect"
import { FetchHttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient, HttpApiMiddleware } from "effect/http-api"
import { Socket } from "effect/socket"
import {
  Authorization,
  KilnApi,
  LogStreamMessage,
  logStreamProtocol,
  logStreamTokenProtocol,
  logsExpiredCode
} from "./Api.ts"
import * as ApiError from "./ApiError.ts"

export interface Options {
  /** Where Kiln is served, with its prefix if it has one: `http://127.0.0.1:8787`, `https://example.com/ci`. */
  readonly baseUrl: string
  readonly token: string | Redacted.Redacted<string>
}

export interface FollowOptions {
  /** Start after this cursor (from a log page or an earlier message); default the start of the log. */
  readonly cursor?: string | undefined
  /**
   * Reconnections in a row, each resuming from the last cursor, before a dropped stream fails (default
   * 5). A connection that delivered messages resets the count.
   */
  readonly reconnects?: number | undefined
}

/** The log stream failed: refused (bad token, unknown build), or dropped more often than allowed. */
export class LogStreamError extends Schema.TaggedError<LogStreamError>()("LogStreamError", {
  message: Schema.String
}) {}

const decode = Schema.decodeUnknownEffect(Schema.fromJsonString(Schema.toCodecJson(LogStreamMessage)))

export const make = Effect.fnUntraced(function* (options: Options) {
  const token = Redacted.isRedacted(options.token) ? Redacted.value(options.token) : options.token
  const baseUrl = options.baseUrl.replace(/\/+$/, "")
  const api = yield* HttpApiClient.make(KilnApi, { baseUrl }).pipe(
    Effect.provide(
      HttpApiMiddleware.layerClient(Authorization, ({ request, next }) =>
        next(HttpClientRequest.bearerToken(request, token))
      )
    )
  )

  /** Why the server refuses a build's stream, when it does (the WebSocket handshake cannot say). */
  const refusal = (buildId: string) =>
    api.builds.get({ params: { id: buildId } }).pipe(
      Effect.match({
        onSuccess: () => undefined,
        onFailure: (error) =>
          error instanceof ApiError.NotFound || error instanceof ApiError.Unauthorized
            ? error.message
            : undefined
      })
    )

  const followLogs = (
    buildId: string,
    follow: FollowOptions = {}
  ): Stream.Stream<LogStreamMessage, LogStreamError> =>
    Stream.suspend(() => {
      const allowed = follow.reconnects ?? 5
      let cursor = follow.cursor
      let received = false
      // One connection, from the last cursor: messages until `end`, or a failure if it drops first.
      const connection = Stream.unwrap(
        Effect.gen(function* () {
          const url = new URL(`${baseUrl}/api/builds/${encodeURIComponent(buildId)}/logs/stream`)
          url.protocol = url.protocol === "https:" ? "wss:" : "ws:"
          if (cursor !== undefined) url.searchParams.set("cursor", cursor)
          received = false
          const socket = yield* Socket.makeWebSocket(url.toString(), {
            protocols: [logStreamProtocol, `${logStreamTokenProtocol}${token}`],
            openTimeout: "10 seconds"
          })
          return Stream.scoped(Stream.fromPull(Socket.readerString(socket)))
        })
      ).pipe(
        Stream.mapEffect((text) => Effect.orDie(decode(text))),
        Stream.tap((message) =>
          Effect.sync(() => {
            received = true
            if (message.type !== "status") cursor = message.cursor
          })
        ),
        Stream.takeUntil((message) => message.type === "end"),
        Stream.provide(Socket.layerWebSocketConstructorGlobal)
      )
      const attempt = (left: number): Stream.Stream<LogStreamMessage, LogStreamError> =>
        Stream.catch(connection, (error) =>
          Stream.unwrap(
            Effect.gen(function* () {
              const remaining = received ? allowed : left
              // A log retention expired is gone for good: no reconnect brings it back.
              const expired =
                Socket.isSocketError(error) &&
                error.reason._tag === "SocketCloseError" &&
                error.reason.code === logsExpiredCode
              const refused = expired
                ? "its log expired under the retention policy (logs_expired)"
                : yield* refusal(buildId)
              if (refused !== undefined || remaining === 0) {
                const reason = refused ?? `dropped ${allowed + 1} times in a row (last: ${error.message})`
                return Stream.fail(
                  new LogStreamError({ message: `log stream of build ${buildId}: ${reason}` })
                )
              }
              yield* Effect.sleep(100 * 2 ** (allowed - remaining))
              return attempt(remaining - 1)
            })
          )
        )
      return attempt(allowed)
    })

  return { ...api, followLogs }
})

export type Client = Effect.Success<ReturnType<typeof make>>

/** The client as a service, over the platform's `fetch`. */
export class KilnClient extends Context.Service<KilnClient, Client>()("@kiln/http/KilnClient") {}

export const layer = (options: Options): Layer.Layer<KilnClient> =>
  Layer.effect(KilnClient, make(options)).pipe(Layer.provide(FetchHttpClient.layer))
