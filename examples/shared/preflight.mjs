/**
 * Loaded with `node --import ./examples/shared/preflight.mjs …` before every entry point README gives
 * (`npm start`, `demo`, `embed`, `mount`, `webhook-receiver`, `bench`, and the server's production
 * command). Plain JavaScript on purpose: it must run on the Node that is too old to load the TypeScript
 * entry point.
 *
 * 1. An older Node fails on the `.ts` entry with `ERR_UNKNOWN_FILE_EXTENSION`, which does not say why:
 *    say which Node is needed, and where README tells how to get it.
 * 2. Under npm, stop when npm is gone. npm runs a script through `sh -c`; npm passes SIGTERM and SIGINT
 *    on to that shell only, and a shell that does not `exec` its command (dash does not) dies of it and
 *    leaves this process running, orphaned. The scripts `exec`, so the signal reaches node; this covers a
 *    shell that runs the script some other way, and an npm killed outright. A process started by `node`
 *    directly may outlive its parent on purpose (`nohup`), so that is left alone.
 */
import { readFileSync } from "node:fs"

const { engines } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"))
const [major, minor] = engines.node
  .replace(/^>=\s*/, "")
  .split(".")
  .map(Number)
const [currentMajor, currentMinor] = process.versions.node.split(".").map(Number)
if (currentMajor < major || (currentMajor === major && currentMinor < minor)) {
  console.error(
    [
      `Kiln needs Node >= ${major}.${minor} (Node 24 recommended); this is Node ${process.versions.node} (${process.execPath}).`,
      "It runs its TypeScript sources directly, which older versions cannot load.",
      "Install Node 24 and put it first on PATH: README.md, section Requirements, says how."
    ].join("\n")
  )
  process.exit(1)
}

if (process.env.npm_lifecycle_event !== undefined) {
  const parent = process.ppid
  const watch = setInterval(() => {
    if (process.ppid === parent) return
    clearInterval(watch)
    console.error(`npm (process ${parent}) is gone: stopping as on SIGTERM.`)
    process.kill(process.pid, "SIGTERM")
  }, 500).unref()
}
