/** Kiln's spans where `Tracing.active` said they would be exported (see `Tracing.ts`). */
import { Effect } from "effect"

/** Each function of `service` (an Effect-returning method) in a span `<prefix>.<name>`; anything else as it is. */
export const spans = <A extends object>(prefix: string, service: A): A => {
  const traced: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(service)) {
    traced[name] =
      typeof value === "function"
        ? (...args: ReadonlyArray<unknown>) =>
            Effect.withSpan(
              (value as (...args: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown>)(...args),
              `${prefix}.${name}`
            )
        : value
  }
  return traced as A
}

/** `effect` in a span when `on` (decided once, where the work is set up), else `effect` itself. */
export const spanIf =
  (on: boolean, name: string, attributes?: Record<string, unknown>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    on ? Effect.withSpan(effect, name, attributes === undefined ? undefined : { attributes }) : effect
