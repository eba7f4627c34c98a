/**
 * `@kiln/core/testing`: the conformance suites every adapter runs (storage, runner, archive store), and
 * `Builds` for watching builds in tests, and `GitServer` for serving test repositories over git's smart HTTP. They need `vitest`, `@effect/vitest`
 * and `fast-check` (peer dependencies, only for this entry point).
 */
export * as ArchiveStoreConformance from "./ArchiveStoreConformance.ts"
export * as Builds from "./Builds.ts"
export * as GitServer from "./GitServer.ts"
export * as RunnerConformance from "./RunnerConformance.ts"
export * as StorageConformance from "./StorageConformance.ts"
export * as WebhookConformance from "./WebhookConformance.ts"
export * as WebhookReceiver from "./WebhookReceiver.ts"
