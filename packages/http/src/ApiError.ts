/**
 * Every error the API answers has one body: `{"error": "<code>", "message": "<sentence>", "details"?: …}`.
 * A 5xx says only `{"error": "internal", "requestId": "…"}`: never SQL, stacks or driver text.
 */
import { DateTime, Schema } from "effect"

const details = Schema.optionalKey(Schema.Unknown)

export class BadRequest extends Schema.Error<BadRequest>("BadRequest")(
  {
    error: Schema.Literals([
      "invalid_request",
      "invalid_filter",
      "invalid_order_by",
      "invalid_parameter",
      "invalid_cursor",
      "invalid_archive"
    ]),
    message: Schema.String,
    details
  },
  { httpApiStatus: 400 }
) {}

export class Unauthorized extends Schema.Error<Unauthorized>("Unauthorized")(
  { error: Schema.Literal("unauthorized"), message: Schema.String },
  { httpApiStatus: 401 }
) {
  static readonly instance = new Unauthorized({
    error: "unauthorized",
    message: "missing or invalid credentials"
  })
}

export class Forbidden extends Schema.Error<Forbidden>("Forbidden")(
  { error: Schema.Literal("forbidden"), message: Schema.String },
  { httpApiStatus: 403 }
) {
  static of(message: string): Forbidden {
    return new Forbidden({ error: "forbidden", message })
  }
}

export class NotFound extends Schema.Error<NotFound>("NotFound")(
  { error: Schema.Literal("not_found"), message: Schema.String },
  { httpApiStatus: 404 }
) {
  static of(message: string): NotFound {
    return new NotFound({ error: "not_found", message })
  }
}

export class Conflict extends Schema.Error<Conflict>("Conflict")(
  { error: Schema.Literal("conflict"), message: Schema.String },
  { httpApiStatus: 409 }
) {
  static of(message: string): Conflict {
    return new Conflict({ error: "conflict", message })
  }
}

export class PayloadTooLarge extends Schema.Error<PayloadTooLarge>("PayloadTooLarge")(
  { error: Schema.Literal("payload_too_large"), message: Schema.String },
  { httpApiStatus: 413 }
) {
  static of(message: string): PayloadTooLarge {
    return new PayloadTooLarge({ error: "payload_too_large", message })
  }
}

/** Why a build's log is gone, in the words every surface answers with (the accounts dialect prefixes its code). */
export const logsExpiredMessage = (buildId: string, expiredAt: DateTime.Utc): string =>
  `the log of build ${buildId} expired on ${DateTime.formatIso(expiredAt)} under the retention policy; the build itself is kept`

/**
 * A build whose log retention expired: its lines are gone for good, which an empty log would hide (a build
 * that printed nothing). `expiredAt` says when.
 */
export class Gone extends Schema.Error<Gone>("Gone")(
  { error: Schema.Literal("logs_expired"), message: Schema.String, expiredAt: Schema.DateTimeUtc },
  { httpApiStatus: 410 }
) {
  static logsExpired(buildId: string, expiredAt: DateTime.Utc): Gone {
    return new Gone({ error: "logs_expired", message: logsExpiredMessage(buildId, expiredAt), expiredAt })
  }
}

/** A feature the server is not configured for (push events without `KILN_PUSH_SECRET`): says what to set. */
export class ServiceUnavailable extends Schema.Error<ServiceUnavailable>("ServiceUnavailable")(
  { error: Schema.Literal("not_configured"), message: Schema.String },
  { httpApiStatus: 503 }
) {
  static readonly pushEvents = new ServiceUnavailable({
    error: "not_configured",
    message: "push events are not configured on this server: set KILN_PUSH_SECRET"
  })
}

export class InternalError extends Schema.Error<InternalError>("InternalError")(
  { error: Schema.Literal("internal"), requestId: Schema.String },
  { httpApiStatus: 500 }
) {}

export const badRequest = (error: BadRequest["error"], message: string, more?: unknown): BadRequest =>
  new BadRequest(more === undefined ? { error, message } : { error, message, details: more })
