/**
 * Group commit for the hot writes. Calls that arrive while a batch is in flight go together in the next
 * one, so under load one transaction or round trip serves many builds, and a lone call waits for nothing. Every call
 * gets its own answer; a batch that fails answers each call with `failed`, and its caller takes the
 * one-at-a-time path, which reports the error properly.
 */
import { Cause, Deferred, Effect, Queue, type Scope } from "effect"

export interface BatcherOptions<In, Out> {
  /** The most calls in one batch. */
  readonly max: number
  /** How many batches may be in flight at once. */
  readonly workers: number
  /** Runs a batch, answering one result per call, in order. */
  readonly run: (batch: ReadonlyArray<In>) => Effect.Effect<ReadonlyArray<Out>, unknown>
  /** The answer of every call in a batch that failed. */
  readonly failed: Out
}

/** Starts the batcher for the life of the scope; the function it answers submits one call. */
export const make = <In, Out>(
  options: BatcherOptions<In, Out>
): Effect.Effect<(input: In) => Effect.Effect<Out>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const queue = yield* Queue.unbounded<readonly [In, Deferred.Deferred<Out>]>()
    const worker = Effect.forever(
      Effect.gen(function* () {
        const calls = yield* Queue.takeBetween(queue, 1, options.max)
        const answers = yield* options.run(calls.map(([input]) => input)).pipe(
          // A defect as much as an error: the worker must live on, or every later call would wait forever.
          Effect.catchCause((cause) =>
            Cause.hasInterruptsOnly(cause)
              ? Effect.failCause(cause)
              : Effect.as(
                  Effect.logWarning("a batched write failed: its calls go one at a time", cause),
                  calls.map(() => options.failed)
                )
          )
        )
        calls.forEach(([, answer], i) => {
          Deferred.doneUnsafe(answer, Effect.succeed(answers[i]!))
        })
      })
    )
    for (let n = 0; n < options.workers; n++) yield* Effect.forkScoped(worker)
    return (input) =>
      Effect.flatMap(Deferred.make<Out>(), (answer) =>
        Effect.andThen(Queue.offer(queue, [input, answer] as const), Deferred.await(answer))
      )
  })
