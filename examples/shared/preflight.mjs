/**
 * Loaded with `node --import ./examples/shared/preflight.mjs …` before every entry point README gives
 * (`npm start`, `demo`, `embed`, `mount`, `bench`, and the server's production command).
 *
 * Under npm, stop when npm is gone. npm runs a script through `sh -c`; npm passes SIGTERM and SIGINT
 * on to that shell only, and a shell that does not `exec` its command (dash does not) dies of it and
 * leaves this process running, orphaned. The scripts `exec`, so the signal reaches node; this covers a
 * shell that runs the script some other way, and an npm killed outright. A process started by `node`
 * directly may outlive its parent on purpose (`nohup`), so that is left alone.
 */
if (process.env.npm_lifecycle_event !== undefined) {
  const parent = process.ppid
  const watch = setInterval(() => {
    if (process.ppid === parent) return
    clearInterval(watch)
    console.error(`npm (process ${parent}) is gone: stopping as on SIGTERM.`)
    process.kill(process.pid, "SIGTERM")
  }, 500).unref()
}
