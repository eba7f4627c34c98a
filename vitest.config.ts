import { defineConfig } from "vitest/config"

export default defineConfig({
  ssr: { resolve: { conditions: ["@kiln/source"] } },
  test: {
    include: ["packages/*/test/**/*.test.ts", "examples/test/**/*.test.ts"],
    // Every test by name, so a run shows which suites ran against which storage.
    reporters: ["verbose"],
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
