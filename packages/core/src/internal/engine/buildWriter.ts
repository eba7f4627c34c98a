/**
 * The owner's writes to one build, in order: log lines get their seq as they arrive and are written in
 * batches, at most `batchLines` at a time. Before a write, lines wait up to `flushMs` for more, unless a
 * full batch is already queued or the build is ending; whatever is queued then goes in one storage call,
 * state changes after the lines queued with them. So a short build's whole record (its lines, `Started`,
 * its final state) is one write, and a long build's lines reach readers within `flushMs` of the previous
 * write. Nothing waits for a state change but what is queued behind it.
 */
import {
  Array as Arr,
  Cause,
  DateTime,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Option,
  Queue,
  type Scope
} from "effect"
import type { Build } from "../../Build.ts"
import type { BuildEvent, Fence } from "../../BuildState.ts"
import type { BuildId } from "../../Id.ts"
import * as LogLine from "../../LogLine.ts"
import type { MetricsShape } from "../../Metrics.ts"
import type * as Redactor from "../../Redactor.ts"
import type { StorageShape } from "../../Storage.ts"
import { retryTransient } from "./storageRetry.ts"

export interface BuildWriterInput {
  readonly storage: Pick<StorageShape, "appendLogs" | "appendAndTransition">
  readonly buildId: BuildId
  readonly fence: Fence
  /** The most lines written at once. */
  readonly batchLines: number
  /** How long lines wait for more before they are written. */
  readonly flushMs: number
  /** Applied to every line before it is numbered and split. */
  readonly redactor: Redactor.Redactor
  /** The write was refused because the lease is gone. */
  readonly onLeaseLost: Effect.Effect<void>
  /** Lines could not be stored, even after retries. */
  readonly onWriteFailed: Effect.Effect<void>
  readonly metrics: MetricsShape
}

/** How a queued state change was written: the build as stored after it, or why not. */
export type Written = Exit.Exit<Build, Effect.Error<ReturnType<StorageShape["appendAndTransition"]>>>

export interface LogEntry {
  readonly stream: LogLine.LogStream
  readonly step: string | null
  readonly text: string
}

export interface BuildWriter {
  readonly add: (stream: LogLine.LogStream, step: string | null, text: string) => Effect.Effect<void>
  /** Numbers, redacts and splits a run of lines with one clock read, then queues them. */
  readonly addAll: (entries: ReadonlyArray<LogEntry>) => Effect.Effect<void>
  /** Queues a state change behind the lines queued so far; `settle` gets how it was written. */
  readonly transition: (
    event: BuildEvent,
    settle: (written: Written) => Effect.Effect<void>
  ) => Effect.Effect<void>
  /** Writes everything queued and stops. */
  readonly close: Effect.Effect<void>
}

/** A state change the writer applies in turn, and what to do with its result. */
interface QueuedEvent {
  readonly _tag: "Event"
  readonly event: BuildEvent
  readonly settle: (written: Written) => Effect.Effect<void>
}

export const makeBuildWriter = (input: BuildWriterInput): Effect.Effect<BuildWriter, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { storage, buildId, fence, batchLines, flushMs, redactor } = input
    const queue = yield* Queue.bounded<LogLine.LogLine | QueuedEvent, Cause.Done>(batchLines * 20)
    const ending = yield* Deferred.make<void>()
    let seq = 0
    // A bounded queue takes what fits and answers the rest: offer again until every entry is in.
    const offerEvery = (entries: ReadonlyArray<LogLine.LogLine | QueuedEvent>): Effect.Effect<void> =>
      Effect.flatMap(Queue.offerAll(queue, entries), (rest) =>
        rest.length === 0 ? Effect.void : offerEvery(rest)
      )
    const addAll = (entries: ReadonlyArray<LogEntry>) =>
      Effect.flatMap(DateTime.now, (ts) => {
        const numbered: Array<LogLine.LogLine> = []
        for (const { stream, step, text } of entries) {
          for (const piece of LogLine.split(redactor.redact(text))) {
            numbered.push({ seq: ++seq, ts, stream, step, text: piece })
          }
        }
        return offerEvery(numbered)
      })
    const stored = (lines: ReadonlyArray<LogLine.LogLine>) => {
      let bytes = 0
      for (const line of lines) bytes += Buffer.byteLength(line.text)
      input.metrics.logsStored(lines.length, bytes)
    }
    const write = (lines: ReadonlyArray<LogLine.LogLine>) =>
      retryTransient(storage.appendLogs(buildId, fence, lines)).pipe(
        Effect.tap(() => Effect.sync(() => stored(lines))),
        Effect.catchTag("LeaseLost", () => input.onLeaseLost),
        // A log that cannot be stored whole fails the build rather than losing lines silently.
        Effect.catch((error) =>
          Effect.logError("could not store log lines", error).pipe(Effect.andThen(input.onWriteFailed))
        )
      )
    const apply = (lines: ReadonlyArray<LogLine.LogLine>, events: Arr.NonEmptyReadonlyArray<QueuedEvent>) =>
      Effect.exit(
        retryTransient(
          storage.appendAndTransition(
            buildId,
            fence,
            lines,
            Arr.map(events, ({ event }) => event)
          )
        )
      )
    const writeWith = (
      lines: ReadonlyArray<LogLine.LogLine>,
      events: Arr.NonEmptyReadonlyArray<QueuedEvent>
    ) =>
      Effect.gen(function* () {
        const written = yield* apply(lines, events)
        if (Exit.isSuccess(written) && lines.length > 0) stored(lines)
        const leaseLost =
          Exit.isFailure(written) &&
          Option.exists(Cause.findErrorOption(written.cause), (error) => error._tag === "LeaseLost")
        if (Exit.isSuccess(written) || leaseLost || (lines.length === 0 && events.length === 1)) {
          for (const queued of events) yield* queued.settle(written)
          return
        }
        // Whichever part failed, each is written again on its own, with its own handling.
        if (lines.length > 0) yield* write(lines)
        for (const queued of events) yield* queued.settle(yield* apply([], [queued]))
      })
    // Runs until the queue is ended and drained: ending it, never interrupting, keeps a taken batch whole.
    const drain = Effect.gen(function* () {
      while (true) {
        yield* Queue.peek(queue)
        if ((yield* Queue.size(queue)) < batchLines) {
          yield* Effect.raceFirst(Effect.sleep(flushMs), Deferred.await(ending))
        }
        const lines: Array<LogLine.LogLine> = []
        const events: Array<QueuedEvent> = []
        for (const entry of yield* Queue.takeBetween(queue, 1, batchLines)) {
          if ("seq" in entry) lines.push(entry)
          else events.push(entry)
        }
        yield* Arr.isReadonlyArrayNonEmpty(events) ? writeWith(lines, events) : write(lines)
      }
    }).pipe(Effect.catchIf(Cause.isDone, () => Effect.void))
    const writer = yield* Effect.forkScoped(drain)
    return {
      add: (stream, step, text) => addAll([{ stream, step, text }]),
      addAll,
      transition: (event, settle) => offerEvery([{ _tag: "Event", event, settle }]),
      close: Deferred.succeed(ending, undefined).pipe(
        Effect.andThen(Queue.end(queue)),
        Effect.andThen(Fiber.join(writer)),
        Effect.asVoid
      )
    }
  })
