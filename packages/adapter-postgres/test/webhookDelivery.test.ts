import { WebhookConformance } from "@kiln/core/testing"
import * as PgTesting from "../src/testing.ts"

WebhookConformance.delivery("postgres", (options) => PgTesting.layerSchema(options))
