import { Storage } from "@kiln/core"
import { StorageConformance } from "@kiln/core/testing"

StorageConformance.all("memory", (options) => Storage.layerMemory(options))
