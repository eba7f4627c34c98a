export * as PgArchiveStore from "./PgArchiveStore.ts"
export * as PgStorage from "./PgStorage.ts"
