/**
 * Rows as Kiln's SQL storages store them, and their mapping to and from the domain. SQLite and Postgres
 * store the same columns, named as in `Fields` (the domain's field names in snake_case) so that
 * `Sql.compileList` fits both: timestamps are epoch milliseconds, JSON values are text exactly as written.
 * Rows are trusted: only a storage writes them, from values the domain already checked.
 *
 * Each entity's row, its columns in one order (for the statements both SQL storages build from column
 * lists) and its mapping live in a module of their own.
 */
export * from "./internal/sqlRows/apps.ts"
export * from "./internal/sqlRows/appVersions.ts"
export * from "./internal/sqlRows/buildSteps.ts"
export * from "./internal/sqlRows/builds.ts"
export * from "./internal/sqlRows/deliveries.ts"
export * from "./internal/sqlRows/events.ts"
export * from "./internal/sqlRows/logs.ts"
export * from "./internal/sqlRows/sourceEvents.ts"
export * from "./internal/sqlRows/tokens.ts"
export * from "./internal/sqlRows/triggers.ts"
export * from "./internal/sqlRows/webhooks.ts"
export * from "./internal/sqlRows/workspaces.ts"
