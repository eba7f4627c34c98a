/**
 * The storage conformance suites. An adapter proves itself by calling them with a function that makes a
 * fresh, empty storage:
 *
 * ```ts
 * import { StorageConformance } from "@kiln/core/testing"
 * StorageConformance.all("sqlite (file)", (options) => SqliteStorage.layer({ filename: tempFile(), ...options }))
 * ```
 *
 * Each suite is also exported on its own, so a suite can be run (or skipped, with a reason) by concern.
 */
import { bootstrap } from "./storage/bootstrap.ts"
import { builds } from "./storage/builds.ts"
import { changes } from "./storage/changes.ts"
import { claims } from "./storage/claims.ts"
import { entities } from "./storage/entities.ts"
import { events } from "./storage/events.ts"
import type { MakeStorage } from "./storage/fixtures.ts"
import { leases } from "./storage/leases.ts"
import { logs } from "./storage/logs.ts"
import { queries } from "./storage/queries.ts"
import { retention } from "./storage/retention.ts"
import { totals } from "./storage/totals.ts"
import { transitions } from "./storage/transitions.ts"
import { triggers } from "./storage/triggers.ts"
import { webhooks } from "./storage/webhooks.ts"

export type { MakeStorage } from "./storage/fixtures.ts"
/** The rows most storage tests start from, for an adapter's own tests beside the suites. */
export { claimOne, queue, seed } from "./storage/fixtures.ts"
export {
  bootstrap,
  builds,
  changes,
  claims,
  entities,
  events,
  leases,
  logs,
  queries,
  retention,
  totals,
  transitions,
  triggers,
  webhooks
}

export const all = (name: string, make: MakeStorage): void => {
  entities(name, make)
  bootstrap(name, make)
  builds(name, make)
  transitions(name, make)
  claims(name, make)
  leases(name, make)
  logs(name, make)
  changes(name, make)
  queries(name, make)
  totals(name, make)
  triggers(name, make)
  events(name, make)
  webhooks(name, make)
  retention(name, make)
}
