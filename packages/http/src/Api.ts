/**
 * The canonical API (`/api/…`, the seed-000 contract) and the deployments dialect as Effect HttpApis: one
 * definition that the server implements, `KilnClient` calls, and OpenAPI documents. Shared by server and
 * clients, so it holds no server code. Each group is defined in `internal/api/`, by what it serves; this
 * module puts them together and is where clients find them.
 */
import { HttpApi, OpenApi } from "effect/http-api"
import { BuildsGroup } from "./internal/api/builds.ts"
import { RequestErrors } from "./internal/api/contract.ts"
import { DeploymentsGroup } from "./internal/api/deployments.ts"
import { EventsGroup, eventStreamPath } from "./internal/api/events.ts"
import { healthPaths } from "./internal/api/health.ts"
import { deploymentLogStreamPath, logStreamPath } from "./internal/api/logs.ts"
import { pushPath } from "./internal/api/push.ts"
import { AppsGroup, AppVersionsGroup, TokensGroup, WorkspacesGroup } from "./internal/api/resources.ts"
import { WebhooksGroup } from "./internal/api/webhooks.ts"

export { BuildDetailView, BuildsGroup, BuildView } from "./internal/api/builds.ts"
export { Authorization, CurrentPrincipal, PageInfo, RequestErrors } from "./internal/api/contract.ts"
export { DeploymentBuildView, DeploymentsGroup, DeploymentView } from "./internal/api/deployments.ts"
export { EventPageView, EventsGroup, EventView } from "./internal/api/events.ts"
export {
  DeploymentLogTicketView,
  LogLineView,
  LogPageView,
  LogStreamMessage,
  LogTicketView,
  logStreamProtocol,
  logStreamTokenProtocol,
  logsExpiredCode
} from "./internal/api/logs.ts"
export { PushPayload } from "./internal/api/push.ts"
export {
  AppsGroup,
  AppVersionsGroup,
  AppVersionView,
  AppView,
  BuildSettingsInput,
  CreatedTokenView,
  TokensGroup,
  TokenView,
  WorkspacesGroup,
  WorkspaceView
} from "./internal/api/resources.ts"
export { DeliveryView, WebhooksGroup, WebhookView, WebhookWithSecretView } from "./internal/api/webhooks.ts"

export class KilnApi extends HttpApi.make("kiln")
  .add(BuildsGroup)
  .add(WorkspacesGroup)
  .add(AppsGroup)
  .add(AppVersionsGroup)
  .add(TokensGroup)
  .add(EventsGroup)
  .add(WebhooksGroup)
  .middleware(RequestErrors)
  .annotate(HttpApi.PayloadParseOptions, { onExcessProperty: "error" })
  .annotateMerge(
    OpenApi.annotations({
      title: "Kiln",
      version: "0.1.0",
      description:
        "Build orchestration: queue builds of your source, run them in containers, follow their logs, cancel them, query them, and hear of every change through a resumable event feed and signed webhooks.",
      transform: (spec) => ({
        ...spec,
        paths: { ...spec.paths, ...logStreamPath, ...pushPath, ...eventStreamPath, ...healthPaths }
      })
    })
  ) {}

/** The deployments dialect as an API of its own, so that a host can serve it or leave it out. */
export class DeploymentsApi extends HttpApi.make("kiln-deployments")
  .add(DeploymentsGroup)
  .middleware(RequestErrors)
  .annotate(HttpApi.PayloadParseOptions, { onExcessProperty: "error" })
  .annotateMerge(
    OpenApi.annotations({
      title: "Kiln — deployments dialect",
      version: "0.1.0",
      description: "Deployments and their builds: bare arrays, plain-text logs and a raw-line log stream.",
      transform: (spec) => ({ ...spec, paths: { ...spec.paths, ...deploymentLogStreamPath } })
    })
  ) {}
