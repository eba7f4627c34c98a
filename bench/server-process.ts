/**
 * Kiln's server (or the bare baseline) in a child process of its own, from `http-server.ts`: a load
 * generator or a memory probe in this process then does not share the server's event loop or heap.
 */
import { type ChildProcess, fork } from "node:child_process"
import { readFileSync } from "node:fs"
import { Effect } from "effect"

/** What the child sends once it listens: its port, and the `sources` kind's control port. */
export type Ready = { readonly port: number; readonly control?: number }

export interface ServerProcess {
  readonly url: string
  readonly control: string
  readonly pid: number
  /** Sends the child a message and answers its reply (the fan-out kinds write their log when asked). */
  readonly ask: (message: unknown) => Effect.Effect<unknown>
}

const stop = (child: ChildProcess) =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.kill()
  })

/**
 * `http-server.ts <kind> …args` in a child process (with these Node options besides this process's), killed
 * when the scope closes; its base URL and pid once it listens.
 */
export const serverProcess = (
  kind: "kiln" | "raw" | "effect" | "sources" | "fanout-kiln" | "fanout-raw",
  args: ReadonlyArray<string>,
  nodeOptions: ReadonlyArray<string> = []
) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      // The child inherits `--conditions=@kiln/source`, so it runs Kiln from source like this process.
      fork(new URL("./http-server.ts", import.meta.url), [kind, ...args], {
        stdio: ["ignore", "inherit", "inherit", "ipc"],
        execArgv: [...process.execArgv, ...nodeOptions]
      })
    ),
    stop
  ).pipe(
    Effect.flatMap((child) =>
      Effect.callback<ServerProcess>((resume) => {
        child.once("message", (ready: Ready) =>
          resume(
            Effect.succeed({
              url: `http://127.0.0.1:${ready.port}`,
              control: `http://127.0.0.1:${ready.control ?? ready.port}`,
              pid: child.pid!,
              ask: (message) =>
                Effect.callback<unknown>((answered) => {
                  child.once("message", (answer) => answered(Effect.succeed(answer)))
                  child.send(message as object)
                })
            })
          )
        )
        child.once("exit", (code) => resume(Effect.die(`the ${kind} server exited with ${code}`)))
      })
    )
  )

/** A process's resident memory now and at its peak, in KiB, from `/proc/<pid>/status`. */
export const residentKib = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)![1])
  return { now: kib("VmRSS"), peak: kib("VmHWM") }
}
