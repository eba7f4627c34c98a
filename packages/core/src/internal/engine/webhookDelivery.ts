/**
 * Webhook delivery: events fanned out into deliveries, then due deliveries leased, sent signed, and their
 * attempts recorded. Storage leases a delivery to one process at a time and keeps one subject's deliveries
 * to one endpoint in order, leasing a subject's run of them together; this loop sends up to `concurrency`
 * runs at once, each in order, and wakes on the `EventsWritten` hint, when a run ends, or at the poll
 * interval (retries come due with no hint).
 */
import { Clock, DateTime, Duration, Effect, Queue, type Scope, Semaphore, Stream } from "effect"
import type { DeliveryResult, MetricsShape } from "../../Metrics.ts"
import type { StorageShape } from "../../Storage.ts"
import type * as Webhook from "../../Webhook.ts"
import type { AddressPolicy } from "../webhooks/addressPolicy.ts"
import { nextDelay, type RetrySchedule, attempts as scheduledAttempts } from "../webhooks/retrySchedule.ts"
import { makeAgents, type SendResult, send } from "../webhooks/send.ts"

export interface DeliveryInput {
  readonly storage: StorageShape
  readonly owner: string
  readonly policy: AddressPolicy
  readonly concurrency: number
  readonly leaseMs: number
  readonly timeoutMs: number
  readonly maxResponseBytes: number
  readonly retrySchedule: RetrySchedule
  readonly pollIntervalMs: number
  readonly metrics: MetricsShape
}

const deliveryResults = {
  Delivered: "delivered",
  Rejected: "rejected",
  Refused: "refused",
  Failed: "failed"
} as const satisfies Record<SendResult["_tag"], DeliveryResult>

/** Events moved into deliveries per storage call. */
const fanOutBatch = 500

/**
 * Once `idleFanOutRounds` rounds in a row only moved events past the cursor (nothing claimed, recorded or
 * being sent), the loop waits `idleFanOutPauseMs` between rounds. While builds run, events are written
 * every few milliseconds; with no endpoint to take them, a round for each write cost the engine's dispatch
 * 15% on PostgreSQL. A round whose events made deliveries claims them at once and ends the spell, so an
 * endpoint's event waits for a pause only when it follows a spell of events no endpoint took.
 */
const idleFanOutRounds = 3
const idleFanOutPauseMs = 50

/**
 * The most deliveries of one subject one claim leases for one sender to send in a row: a build's events
 * written close together go without a storage round trip between each one and the next.
 */
const perSubject = 16

/** What an attempt's result means for the delivery and its endpoint. */
export const attemptOf = (
  result: SendResult,
  attempt: number,
  at: DateTime.Utc,
  schedule: RetrySchedule,
  random: () => number = Math.random
): Webhook.Attempt => {
  switch (result._tag) {
    case "Delivered":
      return {
        at,
        statusCode: result.status,
        durationMs: result.durationMs,
        error: null,
        next: { _tag: "Delivered" },
        disable: null
      }
    case "Refused":
      // Retrying cannot help until the endpoint changes: it waits, disabled, with its backlog.
      return {
        at,
        statusCode: null,
        durationMs: null,
        error: result.reason,
        next: { _tag: "Retry", at },
        disable: `refused: ${result.reason}`
      }
    case "Rejected":
    case "Failed": {
      const statusCode = result._tag === "Rejected" ? result.status : null
      const error = result._tag === "Rejected" ? `HTTP ${result.status}` : result.error
      if (statusCode === 410) {
        return {
          at,
          statusCode,
          durationMs: result.durationMs,
          error,
          next: { _tag: "Retry", at },
          disable: "the endpoint answered 410 Gone"
        }
      }
      const delay = nextDelay(attempt, random, schedule)
      const last = scheduledAttempts(schedule)
      return {
        at,
        statusCode,
        durationMs: result.durationMs,
        error,
        next:
          delay === undefined ? { _tag: "Failed" } : { _tag: "Retry", at: DateTime.addDuration(at, delay) },
        // Only the schedule running out disables: one more failed redelivery of a failed one does not.
        disable:
          delay === undefined && attempt === last
            ? `kept failing: ${last} attempts, the last one: ${error}`
            : null
      }
    }
  }
}

export const deliveryLoop = (input: DeliveryInput): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { storage } = input
    const wake = yield* Queue.sliding<void>(1)
    const signal = Effect.asVoid(Queue.offer(wake, undefined))
    const changes = yield* storage.changes.pipe(
      Effect.catch((error) =>
        Effect.as(Effect.logWarning("webhook delivery hears no hints: it polls", error), Stream.empty)
      )
    )
    yield* Effect.forkScoped(
      Stream.runForEach(changes, (change) => (change._tag === "EventsWritten" ? signal : Effect.void))
    )
    const slots = yield* Semaphore.make(input.concurrency)
    const agents = yield* makeAgents(input.concurrency)
    let inFlight = 0
    // Attempts waiting to be recorded: the next round records all of them in one storage call, before it
    // claims, so a build's next event is claimable once the one before it is recorded.
    let finished: Array<Webhook.FinishedDelivery> = []
    // What storage could not record for now is kept for the next round: a lease that ran out meanwhile
    // answers false, and the delivery is sent again, never lost. What it refuses outright would fail every
    // batch it is in, so a refused batch is recorded one attempt at a time, and an attempt refused alone is
    // dropped: its lease runs out and the delivery goes again.
    const recordBatch = (batch: ReadonlyArray<Webhook.FinishedDelivery>): Effect.Effect<void> =>
      storage.finishDeliveries(batch).pipe(
        Effect.catch((error) => {
          if (error.retryable) {
            return Effect.sync(() => {
              finished = batch.concat(finished)
            }).pipe(Effect.andThen(Effect.logWarning("recording webhook deliveries failed", error)))
          }
          return batch.length > 1
            ? Effect.forEach(batch, (one) => recordBatch([one]), { discard: true })
            : Effect.logError("a webhook attempt could not be recorded; its delivery goes again", error)
        }),
        Effect.asVoid
      )
    const record = Effect.suspend(() => {
      if (finished.length === 0) return Effect.void
      const batch = finished
      finished = []
      return recordBatch(batch)
    })
    // A clean stop records what was sent, so a restart does not send it again.
    yield* Effect.addFinalizer(() => record)

    /** Sends one delivery and queues its attempt for recording; answers whether it was delivered. */
    const deliver = (claimed: Webhook.ClaimedDelivery) =>
      Effect.gen(function* () {
        const result = yield* send(
          { url: claimed.url, id: claimed.delivery.eventId, body: claimed.body, secrets: claimed.secrets },
          {
            policy: input.policy,
            timeout: Duration.millis(input.timeoutMs),
            maxResponseBytes: input.maxResponseBytes,
            agents
          }
        )
        const at = DateTime.makeUnsafe(yield* Clock.currentTimeMillis)
        input.metrics.deliveryAttempted(deliveryResults[result._tag])
        const attempt = attemptOf(result, claimed.delivery.attempts + 1, at, input.retrySchedule)
        finished.push({ id: claimed.delivery.id, fence: claimed.fence, attempt })
        if (attempt.disable !== null) {
          yield* Effect.logWarning(`webhook ${claimed.delivery.webhookId} disabled: ${attempt.disable}`)
        }
        return attempt.next._tag === "Delivered"
      })

    /**
     * Sends a subject's run one delivery after another, in order, while each is delivered and the lease
     * leaves time for one more attempt; whatever it does not send is given back, to be claimed again at once.
     */
    const deliverRun = (run: ReadonlyArray<Webhook.ClaimedDelivery>) =>
      Effect.suspend(() => {
        let sent = 0
        return Effect.gen(function* () {
          const lastStart = (yield* Clock.currentTimeMillis) + input.leaseMs - input.timeoutMs
          while (sent < run.length) {
            if (sent > 0 && (yield* Clock.currentTimeMillis) > lastStart) return
            const delivered = yield* deliver(run[sent]!)
            sent += 1
            if (!delivered) return
          }
        }).pipe(
          Effect.ensuring(
            Effect.sync(() => {
              for (const claimed of run.slice(sent)) {
                finished.push({ id: claimed.delivery.id, fence: claimed.fence, attempt: null })
              }
              inFlight -= 1
            }).pipe(Effect.andThen(signal))
          ),
          slots.withPermits(1)
        )
      })

    const fanOut = Effect.gen(function* () {
      let moved = 0
      while (true) {
        const step = yield* storage.fanOutEvents(fanOutBatch)
        moved += step
        if (step < fanOutBatch) return moved
      }
    })
    // Rounds in a row that only moved events.
    let movedOnly = 0
    const round = Effect.gen(function* () {
      // Neither waits on the other, and on a shared database each is a round trip: together, a round
      // takes one less before its claim.
      const [, moved] = yield* Effect.all([record, fanOut], { concurrency: 2 })
      const free = input.concurrency - inFlight
      const claimed =
        free <= 0
          ? []
          : yield* storage.claimDeliveries({
              owner: input.owner,
              leaseMs: input.leaseMs,
              max: free,
              perSubject
            })
      const runs = Map.groupBy(claimed, (one) => `${one.delivery.webhookId} ${one.delivery.subject}`)
      inFlight += runs.size
      for (const run of runs.values()) yield* Effect.forkScoped(deliverRun(run))
      if (claimed.length > 0 || finished.length > 0 || (moved > 0 && inFlight > 0)) {
        movedOnly = 0
        return "busy"
      }
      if (moved === 0) {
        movedOnly = 0
        return "idle"
      }
      movedOnly += 1
      return movedOnly >= idleFanOutRounds ? "moved" : "busy"
    }).pipe(
      Effect.catch((error) =>
        Effect.as(Effect.logWarning("webhook delivery round failed; trying again", error), "idle" as const)
      )
    )
    const next = {
      busy: Effect.void,
      moved: Effect.sleep(Duration.millis(idleFanOutPauseMs)),
      idle: Effect.asVoid(Effect.timeoutOption(Queue.take(wake), Duration.millis(input.pollIntervalMs)))
    }
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(round, (state) => next[state])))
  })
