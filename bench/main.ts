/**
 * `npm run bench -- <name>`: runs one benchmark, which prints a line per case and a summary line last.
 */
const benchmarks: Record<string, () => Promise<unknown>> = {
  deployments: () => import("./deployments.ts"),
  dispatch: () => import("./dispatch.ts"),
  docker: () => import("./docker.ts"),
  events: () => import("./events.ts"),
  fanout: () => import("./fanout.ts"),
  followers: () => import("./followers.ts"),
  http: () => import("./http.ts"),
  latency: () => import("./latency.ts"),
  list: () => import("./list.ts"),
  list_api: () => import("./list-api.ts"),
  logs: () => import("./logs.ts"),
  sources: () => import("./sources.ts"),
  tracing: () => import("./tracing.ts")
}

const name = process.argv[2]
const run = name === undefined ? undefined : benchmarks[name]
if (run === undefined) {
  console.error(`usage: npm run bench -- <${Object.keys(benchmarks).join("|")}>`)
  process.exitCode = 2
} else {
  await run()
}
