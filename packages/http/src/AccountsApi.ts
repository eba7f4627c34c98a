/**
 * The accounts dialect (`/accounts/{account_id}/builds/…`, the seed-002 contract) as an HttpApi: builds by
 * version and by script, a build by UUID with its trigger and trigger metadata, cancel, log pages, the
 * triggers that make builds, and manual builds of a trigger. An account is a workspace, a script is an
 * app, a version is an app version; every id is the UUID the Kiln id encodes (Kiln's prefixed ids are
 * accepted too). Every response, errors included, is the envelope `{success, errors, messages, result}`.
 */
import type { Authenticator } from "@kiln/core"
import { Workspace } from "@kiln/core"
import { Context, Schema } from "effect"
import {
  HttpApi,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpApiSecurity,
  OpenApi
} from "effect/http-api"
import { AccountsOutcome, AccountsStatus } from "./internal/dialectStatus.ts"

// -----------------------------------------------------------------------------------------------------
// The envelope, and errors in it
// -----------------------------------------------------------------------------------------------------

export const Message = Schema.Struct({ code: Schema.Int, message: Schema.String })

/** A successful answer: `result` in the envelope. */
export const envelope = <S extends Schema.Top>(result: S) =>
  Schema.Struct({
    success: Schema.Literal(true),
    errors: Schema.Array(Message),
    messages: Schema.Array(Message),
    result
  })

const errorFields = {
  success: Schema.Literal(false),
  errors: Schema.Array(Message),
  messages: Schema.Array(Message),
  result: Schema.Null
}

/** The envelope of a failure: `errors` holds one `{code, message}`, its code the HTTP status. */
const failure = (status: number, message: string) => ({
  success: false as const,
  errors: [{ code: status, message }],
  messages: [],
  result: null
})

export class AccountsBadRequest extends Schema.Error<AccountsBadRequest>("AccountsBadRequest")(errorFields, {
  httpApiStatus: 400
}) {
  static of(message: string) {
    return new AccountsBadRequest(failure(400, message))
  }
}
export class AccountsUnauthorized extends Schema.Error<AccountsUnauthorized>("AccountsUnauthorized")(
  errorFields,
  { httpApiStatus: 401 }
) {
  static readonly instance = new AccountsUnauthorized(failure(401, "missing or invalid credentials"))
}
export class AccountsForbidden extends Schema.Error<AccountsForbidden>("AccountsForbidden")(errorFields, {
  httpApiStatus: 403
}) {
  static of(message: string) {
    return new AccountsForbidden(failure(403, message))
  }
}
export class AccountsNotFound extends Schema.Error<AccountsNotFound>("AccountsNotFound")(errorFields, {
  httpApiStatus: 404
}) {
  static of(message: string) {
    return new AccountsNotFound(failure(404, message))
  }
}
export class AccountsConflict extends Schema.Error<AccountsConflict>("AccountsConflict")(errorFields, {
  httpApiStatus: 409
}) {
  static of(message: string) {
    return new AccountsConflict(failure(409, message))
  }
}

/** A build whose log retention expired: its message starts `logs_expired:`, and says when. */
export class AccountsGone extends Schema.Error<AccountsGone>("AccountsGone")(errorFields, {
  httpApiStatus: 410
}) {
  static of(message: string) {
    return new AccountsGone(failure(410, message))
  }
}

/** The same failure envelope for answers made outside HttpApi (unknown routes, limits, 500s). */
export const failureBody = failure

// -----------------------------------------------------------------------------------------------------
// Views
// -----------------------------------------------------------------------------------------------------

const Timestamp = Schema.NullOr(Schema.String)
const Strings = Schema.Array(Schema.String)
const described = <S extends Schema.Top>(schema: S, description: string) => schema.annotate({ description })
/** A string, as the document types it (never `null`), with what it holds when Kiln has nothing to put there. */
const StringField = (description: string) => described(Schema.String, description)

export const EnvironmentVariableView = Schema.Struct({
  is_secret: Schema.Boolean,
  value: described(
    Schema.NullOr(Schema.String),
    "A plain variable's value. null for a secret (its value is never shown) and for a variable given without a value, which the engine's `environment` option supplies."
  ),
  created_on: StringField(
    "When the variable was first set on its trigger; for one stored before Kiln recorded that, the trigger's created_on."
  )
})

export const RepoConnectionView = described(
  Schema.Struct({
    repo_connection_uuid: StringField(
      "Kiln keeps no connections to source hosts: this is derived from the account and the trigger's repository URL, the same for every trigger of the account on that URL."
    ),
    repo_id: StringField("The repository URL, without credentials."),
    repo_name: StringField("`owner/repo`, read from the URL."),
    provider_type: StringField("`github` or `gitlab` for those hosts, `git` for any other."),
    provider_account_id: StringField('Always "": Kiln knows no accounts at source hosts.'),
    provider_account_name: StringField("The owner in the URL (user, organisation or group)."),
    created_on: StringField("The trigger's created_on."),
    modified_on: StringField("The trigger's modified_on."),
    deleted_on: described(Timestamp, "The trigger's deleted_on.")
  }),
  'The repository the trigger builds from. For a trigger that names none (any repository pushed to its account) every string is "" and the times are the trigger\'s.'
)

export const TriggerView = Schema.Struct({
  trigger_uuid: StringField(
    '"" in a build\'s `trigger` when no trigger made the build (it was queued through another API).'
  ),
  trigger_name: Schema.String,
  external_script_id: Schema.String,
  repo_connection: RepoConnectionView,
  branch_includes: Strings,
  branch_excludes: Strings,
  path_includes: Strings,
  path_excludes: Strings,
  build_command: StringField('"" when the trigger sets none: its builds use the app\'s own.'),
  deploy_command: StringField('"" when the trigger sets none: its builds use the app\'s own.'),
  root_directory: StringField(
    'Where in the repository builds run: `/` for its root, `/apps/web` for a directory in it; "" when the trigger sets none and the app\'s own root directory applies.'
  ),
  build_caching_enabled: Schema.Boolean,
  environment_variables: Schema.Record(Schema.String, EnvironmentVariableView),
  created_on: Schema.String,
  modified_on: Schema.String,
  deleted_on: Timestamp
})
export type TriggerView = typeof TriggerView.Type

export const BuildTriggerMetadataView = Schema.Struct({
  build_trigger_source: Schema.Literals(["push", "pull_request", "manual", "api"]),
  branch: StringField('"" for a build of a commit given by its hash, or of no branch.'),
  commit_hash: Schema.String,
  commit_message: StringField('"" when the source host did not say.'),
  author: StringField('"" when the source host did not say; for a build no trigger made, who queued it.'),
  repo_name: StringField('`owner/repo`, read from the repository URL; "" for a build no trigger made.'),
  build_command: StringField('What the trigger set; "" when it set none (the app\'s own applies).'),
  deploy_command: StringField('What the trigger set; "" when it set none (the app\'s own applies).'),
  root_directory: StringField('What the trigger set, as in the trigger; "" when it set none.'),
  environment_variables: described(
    Schema.Record(Schema.String, EnvironmentVariableView),
    "The trigger's variables when the build was made, as the trigger has them now; one it no longer has shows as a secret created when the build was."
  ),
  build_token_name: StringField(
    'The API token that asked for a manual build; "" for builds Kiln recorded no token for (pushes, and builds queued through the other APIs). Like the rest of a build, it is shown to every token that can read the workspace.'
  ),
  build_token_uuid: StringField('That token\'s UUID, or "".'),
  provider_type: StringField('`github`, `gitlab` or `git`, from the repository URL; "" without one.'),
  provider_account_name: StringField('The owner in the repository URL; "" without one.')
})

export const PullRequestView = Schema.Struct({ created_on: Schema.String, pull_request_url: Schema.String })

export const BuildView = Schema.Struct({
  build_uuid: Schema.String,
  status: AccountsStatus,
  build_outcome: described(Schema.NullOr(AccountsOutcome), "null until the build has stopped."),
  created_on: Schema.String,
  initializing_on: Timestamp,
  running_on: Timestamp,
  stopped_on: Timestamp,
  modified_on: Schema.String,
  build_trigger_metadata: BuildTriggerMetadataView,
  pull_request: described(
    Schema.NullOr(PullRequestView),
    "null: Kiln records no pull requests, so no build is a pull request's."
  ),
  trigger: described(
    TriggerView,
    'The trigger that made the build. A build queued through another API has none: it shows an empty trigger (`trigger_uuid` "", every string "", every list empty, the times the build\'s created_on).'
  )
})
export type BuildView = typeof BuildView.Type

export const CancelView = Schema.Struct({
  build_uuid: Schema.String,
  status: described(AccountsStatus, "What the build is now."),
  build_outcome: described(
    Schema.NullOr(AccountsOutcome),
    "`cancelled` when the build stopped at once (it was queued). null while a claimed build is being stopped by its runner: the outcome follows once it has stopped (`cancelled`, or another if it finished first); `messages` says so."
  ),
  stopped_on: Timestamp
})

export const LogsView = Schema.Struct({
  cursor: described(
    Schema.optionalKey(Schema.String),
    "Pass back as `cursor` for the lines after these. Left out once the build has stopped and these are its last lines: page until it is absent. While the build runs, the last page gives its cursor again, to ask later for what follows."
  ),
  lines: described(
    Schema.Array(Schema.Tuple([Schema.Int, Schema.String])),
    "`[epoch milliseconds, text]` per line."
  ),
  truncated: Schema.Boolean
})

export const ResultInfo = Schema.Struct({
  page: Schema.Int,
  per_page: Schema.Int,
  count: Schema.Int,
  total_count: Schema.Int,
  total_pages: Schema.Int,
  next_page: described(Schema.Boolean, "Whether a page follows this one.")
})

// -----------------------------------------------------------------------------------------------------
// Authentication and request errors, in the envelope
// -----------------------------------------------------------------------------------------------------

export class AccountsPrincipal extends Context.Service<AccountsPrincipal, Authenticator.Principal>()(
  "@kiln/http/AccountsPrincipal"
) {}

export class AccountsAuthorization extends HttpApiMiddleware.Service<
  AccountsAuthorization,
  { provides: AccountsPrincipal }
>()("@kiln/http/AccountsAuthorization", {
  security: { bearer: HttpApiSecurity.bearer },
  error: [AccountsUnauthorized, AccountsForbidden, AccountsBadRequest],
  requiredForClient: true
}) {}

export class AccountsRequestErrors extends HttpApiMiddleware.Service<AccountsRequestErrors>()(
  "@kiln/http/AccountsRequestErrors",
  { error: AccountsBadRequest }
) {}

// -----------------------------------------------------------------------------------------------------
// Endpoints
// -----------------------------------------------------------------------------------------------------

const Id = Schema.String.check(Schema.isMaxLength(100))
const Text = (max: number) => Schema.String.check(Schema.isMaxLength(max))
const Patterns = Schema.Array(Text(1024)).check(Schema.isMaxLength(100))
const account = { account_id: Id }
const notFound = [AccountsBadRequest, AccountsNotFound] as const

const TriggerInput = {
  trigger_name: Workspace.NewName,
  repository: Schema.optionalKey(Schema.NullOr(Text(2048))),
  branch_includes: Schema.optionalKey(Patterns),
  branch_excludes: Schema.optionalKey(Patterns),
  path_includes: Schema.optionalKey(Patterns),
  path_excludes: Schema.optionalKey(Patterns),
  build_command: Schema.optionalKey(
    described(Schema.NullOr(Text(8192)), 'null or "": none, so builds use the app\'s own.')
  ),
  deploy_command: Schema.optionalKey(
    described(Schema.NullOr(Text(8192)), 'null or "": none, so builds use the app\'s own.')
  ),
  root_directory: Schema.optionalKey(
    described(
      Schema.NullOr(Text(1024)),
      'Where in the repository builds run: `/` for its root, `/apps/web` or `apps/web` for a directory in it; null or "" for the app\'s own root directory.'
    )
  ),
  build_caching_enabled: Schema.optionalKey(Schema.Boolean),
  /**
   * The variables builds of the trigger get. A secret's value is sealed with the server's
   * `KILN_SECRETS_KEY` before it is stored and never shown again; a secret given without a value keeps the
   * one it had. A variable without a value is left for the engine's `environment` option to supply.
   */
  environment_variables: Schema.optionalKey(
    Schema.Record(
      Text(255),
      Schema.Struct({ is_secret: Schema.Boolean, value: Schema.optionalKey(Text(65_536)) })
    ).check(Schema.makeFilter((record) => Object.keys(record).length <= 200 || "at most 200 variables"))
  )
}

export class AccountsBuildsGroup extends HttpApiGroup.make("accountsBuilds")
  .add(
    HttpApiEndpoint.get("byVersions", "/accounts/:account_id/builds/builds", {
      params: account,
      query: { version_ids: Text(4096) },
      success: envelope(Schema.Struct({ builds: Schema.Record(Schema.String, BuildView) })),
      error: notFound
    }),
    HttpApiEndpoint.get("latest", "/accounts/:account_id/builds/builds/latest", {
      params: account,
      query: { external_script_ids: Text(4096) },
      success: envelope(Schema.Struct({ builds: Schema.Record(Schema.String, BuildView) })),
      error: notFound
    }),
    HttpApiEndpoint.get("get", "/accounts/:account_id/builds/builds/:build_uuid", {
      params: { ...account, build_uuid: Id },
      success: envelope(BuildView),
      error: notFound
    }),
    HttpApiEndpoint.put("cancel", "/accounts/:account_id/builds/builds/:build_uuid/cancel", {
      params: { ...account, build_uuid: Id },
      success: envelope(CancelView),
      error: [...notFound, AccountsForbidden]
    }),
    HttpApiEndpoint.get("logs", "/accounts/:account_id/builds/builds/:build_uuid/logs", {
      params: { ...account, build_uuid: Id },
      query: { cursor: Schema.optional(Text(100)) },
      success: envelope(LogsView),
      error: [...notFound, AccountsGone]
    }),
    HttpApiEndpoint.get("byScript", "/accounts/:account_id/builds/workers/:external_script_id/builds", {
      params: { ...account, external_script_id: Id },
      query: { page: Schema.optional(Text(8)), per_page: Schema.optional(Text(8)) },
      success: Schema.Struct({
        ...envelope(Schema.Array(BuildView)).fields,
        result_info: ResultInfo
      }),
      error: notFound
    })
  )
  .middleware(AccountsAuthorization) {}

export class AccountsTriggersGroup extends HttpApiGroup.make("accountsTriggers")
  .add(
    HttpApiEndpoint.post("create", "/accounts/:account_id/builds/triggers", {
      params: account,
      payload: Schema.Struct({ external_script_id: Id, ...TriggerInput }),
      success: envelope(TriggerView),
      error: [...notFound, AccountsForbidden]
    }),
    HttpApiEndpoint.patch("update", "/accounts/:account_id/builds/triggers/:trigger_uuid", {
      params: { ...account, trigger_uuid: Id },
      payload: Schema.Struct({
        ...TriggerInput,
        trigger_name: Schema.optionalKey(TriggerInput.trigger_name)
      }),
      success: envelope(TriggerView),
      error: [...notFound, AccountsForbidden, AccountsConflict]
    }),
    HttpApiEndpoint.delete("delete", "/accounts/:account_id/builds/triggers/:trigger_uuid", {
      params: { ...account, trigger_uuid: Id },
      success: envelope(TriggerView),
      error: [...notFound, AccountsForbidden]
    }),
    HttpApiEndpoint.get("list", "/accounts/:account_id/builds/workers/:external_script_id/triggers", {
      params: { ...account, external_script_id: Id },
      success: envelope(Schema.Array(TriggerView)),
      error: notFound
    }),
    HttpApiEndpoint.post("build", "/accounts/:account_id/builds/triggers/:trigger_uuid/builds", {
      params: { ...account, trigger_uuid: Id },
      payload: Schema.Struct({
        branch: Schema.optionalKey(Text(255)),
        commit_hash: Schema.optionalKey(Text(64))
      }),
      success: envelope(BuildView),
      error: [...notFound, AccountsForbidden, AccountsConflict]
    })
  )
  .middleware(AccountsAuthorization) {}

export class AccountsApi extends HttpApi.make("kiln-accounts")
  .add(AccountsBuildsGroup)
  .add(AccountsTriggersGroup)
  .middleware(AccountsRequestErrors)
  .annotate(HttpApi.PayloadParseOptions, { onExcessProperty: "error" })
  .annotateMerge(
    OpenApi.annotations({
      title: "Kiln — accounts dialect",
      version: "0.1.0",
      description:
        "Builds and triggers in the accounts dialect: every answer in the {success, errors, messages, result} envelope."
    })
  ) {}
