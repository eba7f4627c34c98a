/**
 * `@kiln/core/testing`: the conformance suites every adapter runs (storage, runner, archive store,
 * webhook delivery), `SortIndexes` (the list pages a SQL adapter must read from its indexes), and `Builds`
 * for watching builds in tests, `GitServer` for serving test repositories over git's smart HTTP,
 * `WebhookReceiver` for receiving webhooks, and `EngineProcess` for running the engine in a process a test
 * can kill. They need `vitest`, `@effect/vitest` and `fast-check` (peer dependencies, only for this entry
 * point).
 */
export * as ArchiveStoreConformance from "./ArchiveStoreConformance.ts"
export * as Builds from "./Builds.ts"
export * as EngineProcess from "./EngineProcess.ts"
export * as GitServer from "./GitServer.ts"
export * as RunnerConformance from "./RunnerConformance.ts"
export * as SortIndexes from "./SortIndexes.ts"
export * as StorageConformance from "./StorageConformance.ts"
export * as WebhookConformance from "./WebhookConformance.ts"
export * as WebhookReceiver from "./WebhookReceiver.ts"
