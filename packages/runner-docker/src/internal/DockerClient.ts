/**
 * The one module that speaks to Docker, through dockerode: a narrow interface of Effects and Streams whose
 * failures are `RunnerError`s, classified in one place (`classifyError`, in `dockerErrors.ts`). It also holds the security
 * policy of every container Kiln creates (see `createContainer`), so no other module can loosen it.
 */
import type { Buffer } from "node:buffer"
import { PassThrough, type Readable } from "node:stream"
import type { App, RunnerError } from "@kiln/core"
import Docker from "dockerode"
import { Cause, Effect, Exit, Option, Schema, Stream } from "effect"
import { makeDemultiplexer, type Output } from "./demultiplexer.ts"
import { classifyError, type Operation, type Settling } from "./dockerErrors.ts"

/** How to reach the engine; everything left out follows `DOCKER_HOST`, else the local socket. */
export interface Connection {
  readonly socketPath?: string | undefined
  readonly host?: string | undefined
  readonly port?: number | string | undefined
  readonly protocol?: "http" | "https" | "ssh" | undefined
  readonly username?: string | undefined
  readonly ca?: string | Buffer | undefined
  readonly cert?: string | Buffer | undefined
  readonly key?: string | Buffer | undefined
  /** A fixed API version such as "v1.41"; without it, the engine's is negotiated on first use. */
  readonly version?: string | undefined
}

export type Labels = Readonly<Record<string, string>>

/** One message of Docker's JSON progress stream (build, push, pull); fields Kiln does not read are dropped. */
export const ProgressMessage = Schema.Struct({
  stream: Schema.optional(Schema.String),
  status: Schema.optional(Schema.String),
  id: Schema.optional(Schema.String),
  error: Schema.optional(Schema.String),
  errorDetail: Schema.optional(
    Schema.Struct({ message: Schema.optional(Schema.String), code: Schema.optional(Schema.Number) })
  ),
  aux: Schema.optional(
    Schema.Struct({ ID: Schema.optional(Schema.String), Digest: Schema.optional(Schema.String) })
  )
})
export type ProgressMessage = typeof ProgressMessage.Type

export interface BuildOptions {
  readonly dockerfile: string
  readonly tag: string
  readonly caching: boolean
  readonly limits: App.Limits
}

export interface ContainerOptions {
  readonly image: string
  readonly command: ReadonlyArray<string>
  readonly workingDir: string
  readonly labels: Labels
  readonly limits: App.Limits
  readonly maxLogBytes: number
}

export interface ExecOptions {
  readonly command: ReadonlyArray<string>
  readonly workingDir: string
  readonly env: ReadonlyArray<string>
}

export interface RegistryAuth {
  readonly serveraddress: string
  readonly username?: string
  readonly password?: string
}

/** A labelled container or image, as listed. */
export interface Listed {
  readonly id: string
  readonly labels: Labels
}

/** A labelled image with at least one tag. */
export interface Tagged extends Listed {
  /** Its tags, as `repository:tag`. */
  readonly references: ReadonlyArray<string>
}

export interface DockerClient {
  /** Succeeds once the engine answers `/_ping`. */
  readonly ping: Effect.Effect<void, RunnerError.RunnerError>
  /**
   * Builds an image with the classic builder from a tar stream; emits Docker's progress messages. Ending
   * the stream early closes the request, which makes the engine cancel the build.
   */
  readonly buildImage: <E>(
    context: Stream.Stream<Uint8Array, E>,
    options: BuildOptions
  ) => Stream.Stream<ProgressMessage, RunnerError.RunnerError | E>
  readonly pushImage: (
    repository: string,
    tag: string,
    auth: RegistryAuth
  ) => Stream.Stream<ProgressMessage, RunnerError.RunnerError>
  readonly pullImage: (image: string) => Stream.Stream<ProgressMessage, RunnerError.RunnerError>
  /** The image's id, or `None` if there is no such image. */
  readonly inspectImage: (name: string) => Effect.Effect<Option.Option<string>, RunnerError.RunnerError>
  /** Labelled images with no tag left. */
  readonly listDanglingImages: (
    labels: Labels
  ) => Effect.Effect<ReadonlyArray<Listed>, RunnerError.RunnerError>
  /** Labelled images with a tag. */
  readonly listTaggedImages: (labels: Labels) => Effect.Effect<ReadonlyArray<Tagged>, RunnerError.RunnerError>
  /**
   * Removes an image by id, or one of its tags: an image with other tags only loses that one, else it goes
   * (with its untagged parents). Never forced, so one a container uses is refused (Internal: retrying will
   * not help until that container is gone); one already gone is success.
   */
  readonly removeImage: (image: string) => Effect.Effect<void, RunnerError.RunnerError>
  readonly createContainer: (options: ContainerOptions) => Effect.Effect<string, RunnerError.RunnerError>
  readonly startContainer: (id: string) => Effect.Effect<void, RunnerError.RunnerError>
  /** SIGTERM, up to `graceMs` (rounded up to seconds) for it to exit, then SIGKILL; one already stopped or gone is success. */
  readonly stopContainer: (id: string, graceMs: number) => Effect.Effect<void, RunnerError.RunnerError>
  /** Force-removes a container with its anonymous volumes; one already gone is success. */
  readonly removeContainer: (id: string) => Effect.Effect<void, RunnerError.RunnerError>
  /** Whether the container still exists. */
  readonly containerExists: (id: string) => Effect.Effect<boolean, RunnerError.RunnerError>
  /** Every container, running or not, with all of these labels. */
  readonly listContainers: (labels: Labels) => Effect.Effect<ReadonlyArray<Listed>, RunnerError.RunnerError>
  /** Extracts a tar stream into a directory of the container. */
  readonly putArchive: <E>(
    id: string,
    path: string,
    tar: Stream.Stream<Uint8Array, E>
  ) => Effect.Effect<void, RunnerError.RunnerError | E>
  readonly createExec: (
    containerId: string,
    options: ExecOptions
  ) => Effect.Effect<string, RunnerError.RunnerError>
  /** Starts an exec and follows its output until the process closes it; ending early detaches. */
  readonly startExec: (execId: string) => Stream.Stream<Output, RunnerError.RunnerError>
  readonly inspectExec: (
    execId: string
  ) => Effect.Effect<{ readonly running: boolean; readonly exitCode: number | null }, RunnerError.RunnerError>
}

interface Pingable {
  readonly ping: (options: { readonly abortSignal: AbortSignal }) => Promise<unknown>
}

/** A client for the engine `connection` points at; nothing is dialled until the first call. */
export const make = (connection: Connection): DockerClient => {
  const options = definedOnly(connection)
  let negotiated: Docker | undefined
  const connect = Effect.gen(function* () {
    const probe = yield* Effect.try({
      try: () => new Docker(options),
      catch: (e) => classifyError("connect", e)
    })
    if (options.version !== undefined) return probe
    const { ApiVersion } = yield* Effect.tryPromise({
      try: () => probe.version(),
      catch: (e) => classifyError("connect", e)
    })
    return new Docker({ ...options, version: `v${negotiate(ApiVersion)}` })
  })
  // Cached once it succeeds, so an engine that was down at first is tried again on the next call.
  const docker = Effect.suspend(() =>
    negotiated !== undefined
      ? Effect.succeed(negotiated)
      : Effect.tap(connect, (d) =>
          Effect.sync(() => {
            negotiated = d
          })
        )
  )

  const call = <A>(
    operation: Exclude<Operation, Settling>,
    f: (docker: Docker, signal: AbortSignal) => Promise<A>
  ): Effect.Effect<A, RunnerError.RunnerError> =>
    Effect.flatMap(docker, (d) =>
      Effect.tryPromise({ try: (signal) => f(d, signal), catch: (e) => classifyError(operation, e) })
    )

  /** A call whose "already done" answer is `None`. */
  const settle = <A>(
    operation: Settling,
    f: (docker: Docker, signal: AbortSignal) => Promise<A>
  ): Effect.Effect<Option.Option<A>, RunnerError.RunnerError> =>
    Effect.flatMap(docker, (d) =>
      Effect.tryPromise({ try: (signal) => f(d, signal), catch: (e) => e }).pipe(
        Effect.map(Option.some),
        Effect.catch((e) => {
          const error = classifyError(operation, e)
          return error === "settled" ? Effect.succeedNone : Effect.fail(error)
        })
      )
    )

  const listImages = (labels: Labels, dangling: boolean) =>
    call("list images", (d) =>
      d.listImages({ filters: { label: selector(labels), dangling: [String(dangling)] } })
    )

  /** The response body of a streaming call; ending the stream destroys the connection. */
  const follow = (
    operation: Exclude<Operation, Settling>,
    open: (docker: Docker, signal: AbortSignal) => Promise<NodeJS.ReadableStream>
  ): Stream.Stream<Uint8Array, RunnerError.RunnerError> =>
    Stream.unwrap(
      Effect.gen(function* () {
        const d = yield* docker
        const controller = new AbortController()
        yield* Effect.addFinalizer(() => Effect.sync(() => controller.abort()))
        const onError = (e: unknown) => classifyError(operation, e)
        const body = yield* Effect.tryPromise({ try: () => open(d, controller.signal), catch: onError })
        return Stream.fromAsyncIterable(body as AsyncIterable<Uint8Array>, onError)
      })
    )

  const progress = (bytes: Stream.Stream<Uint8Array, RunnerError.RunnerError>) =>
    bytes.pipe(
      Stream.decodeText(),
      Stream.splitLines,
      Stream.filter((line) => line.trim().length > 0),
      // A line that is not Docker's JSON is still output: shown as it came.
      Stream.map((line) =>
        decodeProgress(line).pipe(Option.getOrElse((): ProgressMessage => ({ stream: `${line}\n` })))
      )
    )

  /**
   * Feeds a body stream to a request as a Node readable, with backpressure. A failure of the body aborts the
   * request (through `signal`), which then fails with the body's own error (`sourceOr`). The pump ends with
   * the enclosing scope.
   */
  const upload = <E>(body: Stream.Stream<Uint8Array, E>) =>
    Effect.gen(function* () {
      const readable = new PassThrough()
      // The failure reaches the caller through `failed`; the stream's error event only needs a listener.
      readable.on("error", () => {})
      const aborted = new AbortController()
      let failed = Option.none<E>()
      yield* Stream.runForEach(body, (chunk) => write(readable, chunk)).pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            if (Exit.isSuccess(exit)) return void readable.end()
            failed = Cause.findErrorOption(exit.cause)
            readable.destroy()
            aborted.abort()
          })
        ),
        Effect.ignore,
        Effect.forkScoped
      )
      const sourceOr = (error: RunnerError.RunnerError): RunnerError.RunnerError | E =>
        Option.getOrElse(failed, (): RunnerError.RunnerError | E => error)
      return { readable: readable as Readable, signal: aborted.signal, sourceOr }
    })

  return {
    buildImage: (context, options) =>
      Stream.unwrap(
        Effect.map(upload(context), (body) =>
          progress(
            follow("build image", (d, signal) =>
              d.buildImage(body.readable, {
                abortSignal: AbortSignal.any([signal, body.signal]),
                version: "1",
                dockerfile: options.dockerfile,
                t: options.tag,
                nocache: !options.caching,
                rm: true,
                forcerm: true,
                memory: options.limits.memoryBytes,
                cpuperiod: cpuPeriod,
                cpuquota: Math.round(options.limits.cpus * cpuPeriod)
              })
            )
          ).pipe(Stream.mapError(body.sourceOr))
        )
      ),
    pushImage: (repository, tag, auth) =>
      progress(
        follow("push image", (d, signal) =>
          d.getImage(repository).push({ tag, abortSignal: signal, authconfig: { ...auth } })
        )
      ),
    // dockerode's ping takes an abort signal, which its types leave out: a probe that times out ends its request.
    ping: Effect.asVoid(
      call("connect", (d, signal) => (d as unknown as Pingable).ping({ abortSignal: signal }))
    ),
    pullImage: (image) =>
      progress(follow("pull image", (d, signal) => d.pull(image, { abortSignal: signal }))),
    inspectImage: (name) =>
      settle("inspect image", (d) => d.getImage(name).inspect()).pipe(
        Effect.map(Option.map((info) => info.Id))
      ),
    listDanglingImages: (labels) =>
      listImages(labels, true).pipe(
        Effect.map((images) => images.map((image) => ({ id: image.Id, labels: image.Labels ?? {} })))
      ),
    listTaggedImages: (labels) =>
      listImages(labels, false).pipe(
        Effect.map((images) =>
          images.flatMap((image) => {
            const references = (image.RepoTags ?? []).filter((tag) => tag !== untagged)
            // `dangling=false` also lists an image left with a digest but no tag: there is no tag to remove.
            return references.length === 0 ? [] : [{ id: image.Id, labels: image.Labels ?? {}, references }]
          })
        )
      ),
    removeImage: (image) => settle("remove image", (d) => d.getImage(image).remove()).pipe(Effect.asVoid),
    createContainer: (options) =>
      call("create container", (d) =>
        d.createContainer({
          Image: options.image,
          // The image's own entrypoint is replaced: the container must run exactly Kiln's command.
          Entrypoint: [...options.command.slice(0, 1)],
          Cmd: [...options.command.slice(1)],
          WorkingDir: options.workingDir,
          Labels: { ...options.labels },
          HostConfig: {
            // An init as PID 1 forwards signals and reaps orphans. Nothing from the host is mounted (above
            // all never the Docker socket), nothing is privileged, and Kiln removes the container itself.
            Init: true,
            Binds: [],
            Mounts: [],
            Privileged: false,
            AutoRemove: false,
            Memory: options.limits.memoryBytes,
            NanoCpus: Math.round(options.limits.cpus * 1e9),
            PidsLimit: options.limits.pids,
            LogConfig: {
              Type: "json-file",
              Config: { "max-size": String(options.maxLogBytes), "max-file": "1" }
            }
          }
        })
      ).pipe(Effect.map((container) => container.id)),
    startContainer: (id) => call("start container", (d) => d.getContainer(id).start()).pipe(Effect.asVoid),
    stopContainer: (id, graceMs) =>
      settle("stop container", (d) => d.getContainer(id).stop({ t: Math.ceil(graceMs / 1000) })).pipe(
        Effect.asVoid
      ),
    removeContainer: (id) =>
      settle("remove container", (d) => d.getContainer(id).remove({ force: true, v: true })).pipe(
        Effect.asVoid
      ),
    containerExists: (id) =>
      settle("inspect container", (d) => d.getContainer(id).inspect()).pipe(Effect.map(Option.isSome)),
    listContainers: (labels) =>
      call("list containers", (d) =>
        d.listContainers({ all: true, filters: { label: selector(labels) } })
      ).pipe(Effect.map((containers) => containers.map((c) => ({ id: c.Id, labels: c.Labels ?? {} })))),
    putArchive: (id, path, tar) =>
      Effect.scoped(
        Effect.flatMap(upload(tar), (body) =>
          call("copy files into container", (d, signal) =>
            d
              .getContainer(id)
              .putArchive(body.readable, { path, abortSignal: AbortSignal.any([signal, body.signal]) })
          ).pipe(Effect.asVoid, Effect.mapError(body.sourceOr))
        )
      ),
    createExec: (containerId, options) =>
      call("create exec", (d) =>
        d.getContainer(containerId).exec({
          Cmd: [...options.command],
          WorkingDir: options.workingDir,
          Env: [...options.env],
          AttachStdout: true,
          AttachStderr: true,
          Tty: false
        })
      ).pipe(Effect.map((exec) => exec.id)),
    startExec: (execId) =>
      Stream.suspend(() => {
        const demultiplex = makeDemultiplexer()
        return follow("start exec", (d) => d.getExec(execId).start({ hijack: true, stdin: false })).pipe(
          Stream.map(demultiplex),
          Stream.flattenIterable
        )
      }),
    inspectExec: (execId) =>
      call("inspect exec", (d) => d.getExec(execId).inspect()).pipe(
        Effect.map((info) => ({ running: info.Running, exitCode: info.ExitCode ?? null }))
      )
  }
}

// The newest Engine API this runner knows; an older engine is spoken to in its own version.
const newestApi = [1, 47] as const

const negotiate = (engine: string): string => {
  const [major = 0, minor = 0] = engine.split(".").map(Number)
  return major < newestApi[0] || (major === newestApi[0] && minor < newestApi[1])
    ? engine
    : newestApi.join(".")
}

const cpuPeriod = 100_000

const decodeProgress = Schema.decodeUnknownOption(Schema.fromJsonString(ProgressMessage))

// How the engine lists an image with no tag.
const untagged = "<none>:<none>"

const selector = (labels: Labels) => Object.entries(labels).map(([key, value]) => `${key}=${value}`)

const definedOnly = (connection: Connection): Docker.DockerOptions =>
  Object.fromEntries(Object.entries(connection).filter(([, value]) => value !== undefined))

const write = (sink: PassThrough, chunk: Uint8Array) =>
  Effect.callback<void>((resume) => {
    if (sink.destroyed) return resume(Effect.interrupt)
    if (sink.write(chunk)) return resume(Effect.void)
    // The request may close instead of draining: then there is no one left to write to.
    const go = () => {
      sink.off("drain", go)
      sink.off("close", go)
      resume(sink.destroyed ? Effect.interrupt : Effect.void)
    }
    sink.on("drain", go)
    sink.on("close", go)
    return Effect.sync(() => {
      sink.off("drain", go)
      sink.off("close", go)
    })
  })
