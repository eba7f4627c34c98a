/**
 * A Kiln engine in a process of its own, for `bench/latency.ts`: `engine-process.ts <url> <schema>` runs
 * the engine (the no-op runner) on that PostgreSQL schema until the parent goes, and prints `ready`.
 */
import { PgStorage } from "@kiln/adapter-postgres"
import { Engine, SourceStore } from "@kiln/core"
import { Effect, Layer } from "effect"
import { noopRunner, quiet } from "./pipeline.ts"

const [url, schema, sources] = process.argv.slice(2) as [string, string, string]

// Also when the parent dies without stopping us: the IPC channel closes with it.
process.on("disconnect", () => process.exit())

Effect.runFork(
  Layer.launch(
    Layer.effectDiscard(Effect.sync(() => process.send!("ready"))).pipe(
      Layer.provide(Engine.layer({ concurrency: 10 })),
      Layer.provide(
        Layer.mergeAll(
          PgStorage.layer({ connectionString: url, schema }),
          noopRunner,
          SourceStore.layer({ directory: sources })
        )
      ),
      Layer.provide(quiet)
    )
  )
)
