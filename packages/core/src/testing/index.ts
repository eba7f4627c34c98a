/**
 * `@kiln/core/testing`: the conformance suites every adapter runs. They need `vitest` and
 * `@effect/vitest` (peer dependencies, only for this entry point).
 */
export * as StorageConformance from "./StorageConformance.ts"
