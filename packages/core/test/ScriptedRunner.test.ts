import { Runner } from "@kiln/core"
import { RunnerConformance } from "@kiln/core/testing"

RunnerConformance.all("scripted", () => Runner.layerTest, { stopWithinMs: 1_000 })
