/**
 * Change hints across processes: every write that publishes a change also runs `pg_notify` on the
 * schema's channel in its own transaction, and each storage holds one connection of its own (outside the
 * pool) that LISTENs on that channel. When that connection drops, it reconnects with backoff; hints sent
 * meanwhile are lost, which costs nothing but latency, since storage stays the truth and engines poll.
 */
import { createHash } from "node:crypto"
import { BuildState, Id, type Storage, type StorageError } from "@kiln/core"
import { Deferred, Duration, Effect, Exit, Option, Schedule, Schema, type Scope } from "effect"
import pg from "pg"
import { classifyError } from "./classifyError.ts"

/** The schema's channel: an identifier of at most 63 bytes whatever the schema's name, so a hash of it. */
export const channelOf = (schema: string): string =>
  `kiln_${createHash("sha256").update(schema).digest("hex").slice(0, 32)}`

/**
 * What travels in a notification: changes, and which storage made them, so that it can skip its own.
 * Batched writes build the same text in SQL (`statements.announce`), a few dozen changes to a notification.
 */
export const payload = (source: string, changes: ReadonlyArray<Storage.Change>): string =>
  JSON.stringify({ source, changes })

const Notification = Schema.Struct({
  source: Schema.String,
  changes: Schema.Array(
    Schema.Union([
      Schema.Struct({
        _tag: Schema.Literal("BuildChanged"),
        buildId: Id.BuildId,
        workspaceId: Id.WorkspaceId,
        phase: BuildState.Phase,
        cancelRequested: Schema.Boolean
      }),
      Schema.Struct({
        _tag: Schema.Literal("LogsAppended"),
        buildId: Id.BuildId,
        workspaceId: Id.WorkspaceId,
        lastSeq: Schema.Int
      }),
      Schema.Struct({ _tag: Schema.Literal("EventsWritten") })
    ])
  )
})
// Anyone who may connect can notify on the channel, so a payload is checked before it is believed.
const decode = Schema.decodeUnknownOption(Schema.fromJsonString(Notification))

export interface Options {
  readonly config: pg.ClientConfig
  readonly channel: string
  /** This storage's own tag: its notifications are heard locally already. */
  readonly source: string
  readonly onChange: (change: Storage.Change) => void
}

/** One listening connection for the life of the scope; succeeds with an effect that waits for it to drop. */
const connect = (
  options: Options
): Effect.Effect<Effect.Effect<void>, StorageError.StorageError, Scope.Scope> =>
  Effect.gen(function* () {
    const dropped = yield* Deferred.make<void>()
    const client = new pg.Client({ ...options.config, application_name: `kiln listener ${options.channel}` })
    const drop = () => Deferred.doneUnsafe(dropped, Exit.void)
    client.on("error", drop)
    client.on("end", drop)
    client.on("notification", (message) => {
      // Most of what a busy engine hears is its own: skipped before it is decoded. A payload that merely
      // mentions this storage's tag is skipped too, which costs at most a hint.
      const text = message.payload ?? ""
      if (message.channel !== options.channel || text.includes(options.source)) return
      const heard = decode(text)
      if (Option.isNone(heard)) return
      // A batch of writes says `EventsWritten` once per write; one wakes every reader.
      let eventsWritten = false
      for (const change of heard.value.changes) {
        if (change._tag === "EventsWritten") {
          if (eventsWritten) continue
          eventsWritten = true
        }
        options.onChange(change)
      }
    })
    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => client.connect(),
        catch: (cause) => classifyError(cause, { connecting: true })
      }),
      () => Effect.promise(() => client.end().catch(() => undefined))
    )
    yield* Effect.tryPromise({
      try: () => client.query(`LISTEN ${pg.escapeIdentifier(options.channel)}`),
      catch: (cause) => classifyError(cause, { connecting: true })
    })
    return Deferred.await(dropped)
  })

// Backs off to a try every few seconds while the server is away.
const reconnect = Schedule.exponential("100 millis").pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(5)))),
  Schedule.jittered
)

/**
 * Listens for the life of the scope. Succeeds once the first connection is listening, so that a
 * subscriber hears every change made after `make`; fails if that first connection cannot be made.
 */
export const listen = (options: Options): Effect.Effect<void, StorageError.StorageError, Scope.Scope> =>
  Effect.gen(function* () {
    const ready = yield* Deferred.make<void, StorageError.StorageError>()
    const session = Effect.scoped(
      Effect.gen(function* () {
        const dropped = yield* connect(options)
        yield* Deferred.succeed(ready, undefined)
        yield* dropped
      })
    )
    // A failure of the first connection settles `ready`: the storage does not start. After that, each
    // drop is followed by a pause and a new connection, retried with backoff while the server is away.
    const first = session.pipe(Effect.tapError((error) => Deferred.fail(ready, error)))
    const again = Effect.sleep("100 millis").pipe(Effect.andThen(session), Effect.retry(reconnect))
    yield* Effect.forkScoped(first.pipe(Effect.andThen(Effect.forever(again)), Effect.ignore))
    yield* Deferred.await(ready)
  })
