export * as SqliteStorage from "./SqliteStorage.ts"
