export * as DockerRunner from "./DockerRunner.ts"
