import { RunnerConformance } from "@kiln/core/testing"
import { afterAll } from "vitest"
import { DockerRunner } from "../src/index.ts"
import { builderImage, describeDocker, namespaceOf, removeNamespace, unavailable } from "./fixtures.ts"

const namespace = namespaceOf("conformance")
// A short grace keeps the suite fast; cancel.test.ts holds the default grace to its bound.
const stopGraceMs = 2_000

afterAll(() => {
  if (unavailable === undefined) removeNamespace(namespace)
})

describeDocker("docker", () =>
  RunnerConformance.all("docker", () => DockerRunner.layer({ namespace, stopGraceMs }), {
    builderImage,
    stopWithinMs: stopGraceMs + 2_000
  })
)
