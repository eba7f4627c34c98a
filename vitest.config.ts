import { defineConfig } from "vitest/config"

export default defineConfig({
  ssr: { resolve: { conditions: ["@kiln/source"] } },
  test: {
    include: ["packages/*/test/**/*.test.ts", "examples/test/**/*.test.ts"],
    // A PostgreSQL server for the run (embedded, or KILN_TEST_DATABASE_URL's); tests take schemas of it.
    globalSetup: ["packages/adapter-postgres/test/globalSetup.ts"],
    // Every test by name, so a run shows which suites ran against which storage.
    reporters: ["verbose"],
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
