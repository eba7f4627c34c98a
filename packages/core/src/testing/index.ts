/**
 * `@kiln/core/testing`: the conformance suites every adapter runs, and `Builds` for watching builds in tests. They need `vitest`, `@effect/vitest`
 * and `fast-check` (peer dependencies, only for this entry point).
 */
export * as Builds from "./Builds.ts"
export * as RunnerConformance from "./RunnerConformance.ts"
export * as StorageConformance from "./StorageConformance.ts"
