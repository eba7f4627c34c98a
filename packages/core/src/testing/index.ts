/**
 * `@kiln/core/testing`: the conformance suites every adapter runs. They need `vitest`, `@effect/vitest`
 * and `fast-check` (peer dependencies, only for this entry point).
 */
export * as RunnerConformance from "./RunnerConformance.ts"
export * as StorageConformance from "./StorageConformance.ts"
