/**
 * What every group of the canonical API and the deployments dialect shares: the bearer authentication
 * that provides the caller, the 400 that names what could not be decoded, bounded text, the `{id}` path
 * parameter, and the list contract (`limit`, `after`, `before`, `ids`, `filter`, `orderBy` in; `{data,
 * pageInfo}` out).
 */
import type { Authenticator } from "@kiln/core"
import { Context, Schema } from "effect"
import { HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import { BadRequest, Forbidden, Unauthorized } from "../../ApiError.ts"

/** Who is calling: provided to every handler by the `Authorization` middleware. */
export class CurrentPrincipal extends Context.Service<CurrentPrincipal, Authenticator.Principal>()(
  "@kiln/http/CurrentPrincipal"
) {}

/**
 * A bearer token; without one, the dashboard's session cookie (`kiln_session`, with the `x-kiln-csrf` header
 * on a request that changes something). One scheme, so that a request's answer is its credential's: a
 * second scheme would be tried after any refusal of the first, and its refusal answered instead.
 */
export class Authorization extends HttpApiMiddleware.Service<Authorization, { provides: CurrentPrincipal }>()(
  "@kiln/http/Authorization",
  {
    security: { bearer: HttpApiSecurity.bearer },
    error: [Unauthorized, Forbidden, BadRequest],
    requiredForClient: true
  }
) {}

/** Renders request decoding failures as `400 {"error": "invalid_request", …}` naming the path. */
export class RequestErrors extends HttpApiMiddleware.Service<RequestErrors>()("@kiln/http/RequestErrors", {
  error: BadRequest
}) {}

export const Text = (max: number) => Schema.String.check(Schema.isMaxLength(max))
export const optionalText = (max: number, description: string) =>
  Schema.optional(Text(max).annotate({ description }))

/** The list contract every resource shares; values are parsed by `Query.fromParams`, which names the path. */
export const listQuery = {
  limit: optionalText(8, "Page size, 1–100 (default 100)."),
  after: optionalText(4096, "Cursor: the page after this row (next page)."),
  before: optionalText(4096, "Cursor: the page before this row (previous page)."),
  ids: optionalText(8192, "Comma-separated ids; narrows within the caller's scope."),
  filter: optionalText(8192, "JSON filter expression: and/or/not, per-field operators, relations."),
  orderBy: optionalText(1024, 'JSON array of {field: direction}, e.g. [{"completedAt":"desc_nulls_last"}].')
}

export const idParam = { id: Text(100) }

/** Why an empty page's cursors are null, though the seed document types them as strings. */
const emptyPageCursor =
  "null on an empty page (as in Relay's PageInfo): a cursor names a row, and an empty page has none. To look again later for rows past the end, reuse the cursor you asked with."

export const PageInfo = Schema.Struct({
  total: Schema.Int.annotate({ description: "Rows matching the scope and filter, whatever the cursor." }),
  hasNextPage: Schema.Boolean,
  hasPreviousPage: Schema.Boolean,
  startCursor: Schema.NullOr(Schema.String).annotate({
    description: `The first row's cursor: pass it as \`before\` for the previous page; ${emptyPageCursor}`
  }),
  endCursor: Schema.NullOr(Schema.String).annotate({
    description: `The last row's cursor: pass it as \`after\` for the next page; ${emptyPageCursor}`
  })
})

export const page = <S extends Schema.Top>(item: S) =>
  Schema.Struct({ data: Schema.Array(item), pageInfo: PageInfo })
