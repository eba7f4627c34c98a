import { StorageConformance } from "@kiln/core/testing"
import * as PgTesting from "../src/testing.ts"

StorageConformance.all("postgres", (options) => PgTesting.layerSchema(options))
