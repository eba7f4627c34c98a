/**
 * Kiln's OpenTelemetry spans: each storage call (`kiln.storage.<operation>`), each claim round
 * (`kiln.engine.claim`), a build's run (`kiln.build.run`) and its steps (`kiln.build.step`); an HTTP
 * request's server span comes from Effect's HTTP server, with the storage calls under it.
 *
 * Off by default, and then free: Kiln makes spans only when a tracer other than Effect's native one (which
 * has no backend) is installed before the storage and the engine are built — without one, storage is not
 * wrapped and the engine opens no span. `layerOtlp` installs a tracer that exports over OTLP/HTTP (JSON) in
 * batches; `layerFromEnv` does so from the standard `OTEL_EXPORTER_OTLP_ENDPOINT` variables, and installs
 * nothing when they are unset.
 */
import { Config, type Duration, Effect, Layer, Option, References, Tracer } from "effect"
import { FetchHttpClient } from "effect/http"
import { OtlpExporter, OtlpSerialization, OtlpTracer } from "effect/observability"

/** Whether spans made now would go anywhere: a tracer with a backend, and tracing enabled. */
export const active: Effect.Effect<boolean> = Effect.gen(function* () {
  return (yield* References.TracerEnabled) && (yield* Effect.tracer) !== Tracer.nativeTracer
})

export interface OtlpOptions {
  /** The collector's traces endpoint, e.g. `http://collector:4318/v1/traces`. */
  readonly url: string
  /** `service.name` of the spans (default `kiln`). */
  readonly serviceName?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** How often batches are sent (default 5 s); they are flushed when the layer closes too. */
  readonly exportInterval?: Duration.Input | undefined
}

/** A tracer that exports Kiln's spans (and the host's) over OTLP/HTTP, for the life of the layer. */
export const layerOtlp = (options: OtlpOptions): Layer.Layer<OtlpExporter.Flusher> =>
  OtlpTracer.layer({
    url: options.url,
    resource: { serviceName: options.serviceName ?? "kiln" },
    headers: options.headers,
    exportInterval: options.exportInterval
  }).pipe(Layer.provide(OtlpSerialization.layerJson), Layer.provide(FetchHttpClient.layer))

/**
 * `layerOtlp` where OpenTelemetry's variables name a collector: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
 * `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces` added; `OTEL_SERVICE_NAME` (default `kiln`). Nothing is
 * installed when neither endpoint is set, or `OTEL_SDK_DISABLED=true`, or `OTEL_TRACES_EXPORTER` names
 * something other than `otlp`.
 */
export const layerFromEnv: Layer.Layer<OtlpExporter.Flusher, Config.ConfigError> = Layer.unwrap(
  Effect.gen(function* () {
    const disabled = yield* Config.Boolean("OTEL_SDK_DISABLED").pipe(Config.withDefault(false))
    const exporter = yield* Config.String("OTEL_TRACES_EXPORTER").pipe(Config.withDefault("otlp"))
    const traces = yield* Config.option(Config.String("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    const base = yield* Config.option(Config.String("OTEL_EXPORTER_OTLP_ENDPOINT"))
    const serviceName = yield* Config.String("OTEL_SERVICE_NAME").pipe(Config.withDefault("kiln"))
    const url = Option.orElse(traces, () =>
      Option.map(base, (endpoint) => `${endpoint.replace(/\/+$/, "")}/v1/traces`)
    )
    // Effect's own flusher with nothing to flush: no tracer is installed, so Kiln makes no span.
    if (disabled || exporter !== "otlp" || Option.isNone(url)) return OtlpExporter.layerFlusher
    return layerOtlp({ url: url.value, serviceName })
  })
)
