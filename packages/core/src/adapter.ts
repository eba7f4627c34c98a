/**
 * `@kiln/core/adapter`: what an adapter author uses and an embedding app does not. A storage adapter is a
 * `StorageDriver` (docs/adapters.md); `Sql` compiles the query language for SQLite and PostgreSQL,
 * `SqlRows` fixes the columns every SQL adapter shares, and `Evaluator` answers queries in memory. A runner
 * uses `BuildContext` for Docker build contexts, and `LineBuffer` and `Redactor` for its output. `Claim`
 * and `LogBudget` are the pure rules core's lifecycle applies, for adapters' own tests and fast paths;
 * `Batcher` groups concurrent writes, as core's build creation and PostgreSQL's fast paths do.
 */
export * as Batcher from "./Batcher.ts"
export * as BuildContext from "./BuildContext.ts"
export * as Claim from "./Claim.ts"
export * as Evaluator from "./Evaluator.ts"
export * as LineBuffer from "./LineBuffer.ts"
export * as LogBudget from "./LogBudget.ts"
export * as Redactor from "./Redactor.ts"
export * as Sql from "./Sql.ts"
export * as SqlRows from "./SqlRows.ts"
export * as StorageDriver from "./StorageDriver.ts"
