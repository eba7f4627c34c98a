import { Storage } from "@kiln/core"
import { WebhookConformance } from "@kiln/core/testing"

WebhookConformance.delivery("memory", (options) => Storage.layerMemory(options))
