/**
 * The engine with webhook delivery on, in a Node process of its own, for tests that kill a process
 * (`kill -9`) or run several on one storage: `serve` is the child's side, called by an adapter's fixture
 * script with its storage; `start` forks such a script and hears, over IPC, the `webhook-id` of every
 * request the child starts, which is how a test tells which process sent what.
 */
import { fork } from "node:child_process"
import { subscribe } from "node:diagnostics_channel"
import type { ClientRequest } from "node:http"
import { Cause, Effect, Exit, Layer, References, type Scope } from "effect"
import type { Storage } from "../Storage.ts"
import type { MakeStorage } from "./storage/fixtures.ts"
import { engineLayer, testDelivery } from "./WebhookConformance.ts"

/**
 * Build claims lapse as fast as `testDelivery`'s delivery leases, so that a process started after a kill
 * takes over both.
 */
const leaseMs = 2_000
/** Builds run at once: twice the default, so that events come fast enough to keep deliveries busy. */
const concurrency = 4

type Message = { readonly _tag: "Ready" } | { readonly _tag: "Sent"; readonly id: string }

/**
 * The child: runs the engine on `storage` (builds with the scripted runner, sources under `directory`)
 * until it is killed or its parent goes away, telling the parent when it runs and each request it starts.
 */
export const serve = async (storage: Layer.Layer<Storage, unknown>, directory: string): Promise<void> => {
  const tell = (message: Message) => process.send?.(message)
  // Node announces every request `node:http` starts, the sender's included, pooled connections or not.
  subscribe("http.client.request.start", (message) => {
    const id = (message as { readonly request: ClientRequest }).request.getHeader("webhook-id")
    if (typeof id === "string") tell({ _tag: "Sent", id })
  })
  // The parent may die without killing its children: the IPC channel closes with it.
  process.on("disconnect", () => process.exit())
  const make: MakeStorage = () => storage
  const exit = await Effect.runPromiseExit(
    Effect.scoped(
      Effect.gen(function* () {
        yield* Layer.build(engineLayer(make, directory, testDelivery, { leaseMs, concurrency }))
        tell({ _tag: "Ready" })
        return yield* Effect.never
      })
    ).pipe(Effect.provideService(References.MinimumLogLevel, "Warn"))
  )
  if (Exit.isFailure(exit)) {
    process.stderr.write(`${Cause.pretty(exit.cause)}\n`)
    process.exit(1)
  }
}

export interface Child {
  readonly pid: number
  /** The `webhook-id` of every request it started, in the order it started them (as heard so far). */
  readonly sent: ReadonlyArray<string>
  /** `kill -9`: no finalizer runs, no lease is given back. Settles once the process is gone. */
  readonly kill: Effect.Effect<void>
}

/**
 * Forks `script` (a fixture calling `serve`) from sources with `args`, and settles once its engine runs.
 * The process is killed when the scope closes, if it is still running.
 */
export const start = (
  script: string,
  args: ReadonlyArray<string>
): Effect.Effect<Child, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<Child, Error>((resume) => {
      const child = fork(script, [...args], {
        execArgv: ["--conditions=@kiln/source"],
        stdio: ["ignore", "inherit", "inherit", "ipc"]
      })
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
      const sent: Array<string> = []
      child.on("message", (message: Message) => {
        if (message._tag === "Sent") sent.push(message.id)
        else
          resume(
            Effect.succeed({
              pid: child.pid!,
              sent,
              kill: Effect.promise(() => {
                child.kill("SIGKILL")
                return exited
              })
            })
          )
      })
      child.once("exit", (code, signal) =>
        resume(Effect.fail(new Error(`the engine process exited (${signal ?? code}) before it ran`)))
      )
    }),
    (child) => child.kill
  )
