/**
 * The git CLI, run non-interactively: fetching one commit of a repository into a private bare
 * repository, reading that commit, and streaming `git archive` of it. Each git process leads its own
 * process group, so ending the effect or stream that started it kills it with every helper it spawned.
 */
import { spawn } from "node:child_process"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import type { Readable } from "node:stream"
import { Duration, Effect, Stream } from "effect"
import type { CommitSha } from "../AppVersion.ts"
import { SourceError } from "../SourceError.ts"
import type { GitCommit } from "../SourceStore.ts"

export interface GitSettings {
  /** Absolute directories whose repositories may be read; empty for none. */
  readonly localRepositories: ReadonlyArray<string>
  /** How long a fetch may take before it is killed. */
  readonly timeout: Duration.Duration
}

const failed = (message: string, cause?: unknown) =>
  new SourceError({ reason: "GitFailed", message, ...(cause === undefined ? {} : { cause }) })

const notStarted = (cause: unknown) => failed("git could not be started on this host", cause)

/** The URL with the password, or an http token given as the user name, replaced by `***`. */
export const displayUrl = (url: string): string =>
  url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#@]*)@/, (_, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(":")
    if (colon !== -1) return `${scheme}${userinfo.slice(0, colon)}:***@`
    return /^https?:/i.test(scheme) ? `${scheme}***@` : `${scheme}${userinfo}@`
  })

/** What must never appear in a message: the URL's credentials, as written and percent-decoded. */
const secretsOf = (url: string): ReadonlyArray<string> => {
  const userinfo = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#@]*)@/.exec(url)?.[1]
  if (userinfo === undefined) return []
  const colon = userinfo.indexOf(":")
  const secret = colon === -1 ? (/^https?:/i.test(url) ? userinfo : "") : userinfo.slice(colon + 1)
  if (secret === "") return []
  let decoded = secret
  try {
    decoded = decodeURIComponent(secret)
  } catch {
    // Not valid percent-encoding: git passes it on as written, which is already listed.
  }
  return [userinfo, secret, decoded]
}

/** An absolute path in git's words, where a word starts: every one but the URL's is the server's. */
const serverPath = /([\s'"`(=])\/[^\s'"`():]*/g

/** git's own explanation, from its stderr, with the URL's credentials and the server's paths removed. */
const explain = (stderr: string, repository: string, url?: string): string => {
  // The first line says what went wrong (ssh's own lines have no "fatal:"); later ones are consequences.
  const line =
    stderr
      .split("\n")
      .map((l) => l.trim())
      .find((l) => l !== "" && !l.startsWith("warning: ") && !l.startsWith("hint: ")) ?? "no output"
  const text = ` ${line.replace(/^(fatal|error): /, "")}`
  // The URL is the client's own, even an allowed local repository's path, and what follows it continues it.
  let shown = (url === undefined ? [text] : text.split(url))
    .map((part) => part.split(repository).join("(scratch repository)").replace(serverPath, "$1(server path)"))
    .join(url === undefined ? "" : displayUrl(url))
    .slice(1)
  if (url !== undefined) for (const secret of secretsOf(url)) shown = shown.split(secret).join("***")
  return shown.length > 300 ? `${shown.slice(0, 300)}…` : shown
}

/** Variables that would point git at another repository than the one named on its command line. */
const repositoryVariables = new Set([
  "GIT_DIR",
  "GIT_WORK_TREE",
  "GIT_INDEX_FILE",
  "GIT_OBJECT_DIRECTORY",
  "GIT_ALTERNATE_OBJECT_DIRECTORIES",
  "GIT_COMMON_DIR",
  "GIT_NAMESPACE"
])

const environment = (settings: GitSettings): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env))
    if (value !== undefined && !repositoryVariables.has(key)) env[key] = value
  return {
    ...env,
    // Never wait for a person. git runs in a session of its own, without a terminal, so neither git nor
    // ssh can prompt there; these also rule out a credential manager's dialog and ssh's askpass window.
    GIT_TERMINAL_PROMPT: "0",
    GCM_INTERACTIVE: "never",
    SSH_ASKPASS_REQUIRE: "never",
    // The only transports, for redirects too: without file, no remote can lead git to the host's disk.
    GIT_ALLOW_PROTOCOL: settings.localRepositories.length > 0 ? "https:http:ssh:file" : "https:http:ssh",
    // git's messages are matched below, so they must be in English.
    LC_ALL: "C"
  }
}

interface Finished {
  readonly code: number | null
  readonly signal: string | null
  /** Set when git could not be started at all. */
  readonly error: Error | undefined
  readonly stderr: string
}

interface GitProcess {
  readonly stdout: Readable
  /** Settles once git has exited and its output is closed; never rejects. */
  readonly finished: Promise<Finished>
  /** Kills git and its helpers unless it has exited, and settles once it is gone. */
  readonly stop: () => Promise<Finished>
}

/** Starts git; the scope kills its process group if it is still running, and waits for it to be gone. */
const start = (args: ReadonlyArray<string>, settings: GitSettings) =>
  Effect.acquireRelease(
    Effect.try({
      try: (): GitProcess => {
        const child = spawn("git", args, {
          env: environment(settings),
          stdio: ["ignore", "pipe", "pipe"],
          // A process group (and session) of its own: killing the group ends git's helpers too, and
          // without a controlling terminal nothing in it can prompt.
          detached: true
        })
        let stderr = ""
        child.stderr.setEncoding("utf8")
        child.stderr.on("data", (text: string) => {
          if (stderr.length < 64 * 1024) stderr += text
        })
        const finished = new Promise<Finished>((resolve) => {
          // `on`, not `once`: a later "error" (a failed kill) without a listener would crash the host.
          child.on("error", (error) => resolve({ code: null, signal: null, error, stderr }))
          child.once("close", (code, signal) => resolve({ code, signal, error: undefined, stderr }))
        })
        const stop = () => {
          if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
            try {
              process.kill(-child.pid, "SIGKILL")
            } catch {
              // The group is gone already, or the platform has no process groups.
              child.kill("SIGKILL")
            }
          }
          child.stdout.destroy()
          child.stderr.destroy()
          return finished
        }
        return { stdout: child.stdout, finished, stop }
      },
      catch: notStarted
    }),
    (git) => Effect.promise(git.stop)
  )

/** Runs git to its end, with its standard output as text. */
const run = (args: ReadonlyArray<string>, settings: GitSettings) =>
  Effect.scoped(
    Effect.gen(function* () {
      const git = yield* start(args, settings)
      const chunks: Array<Buffer> = []
      git.stdout.on("data", (chunk: Buffer) => chunks.push(chunk))
      const finished = yield* Effect.promise(() => git.finished)
      if (finished.error !== undefined) return yield* notStarted(finished.error)
      return { ...finished, stdout: Buffer.concat(chunks).toString("utf8") }
    })
  )

/** Makes an empty bare repository that takes the committed bytes of files as they are. */
export const init = (repository: string, settings: GitSettings) =>
  Effect.gen(function* () {
    const result = yield* run(["init", "--bare", "--quiet", repository], settings)
    if (result.code !== 0)
      return yield* failed(`git could not create a scratch repository: ${explain(result.stderr, repository)}`)
    // `git archive` would otherwise apply the tree's .gitattributes: drop export-ignore files, expand
    // export-subst, convert line endings. A build context is the commit as committed.
    yield* Effect.tryPromise({
      try: () =>
        writeFile(
          join(repository, "info", "attributes"),
          "* -export-ignore -export-subst -text -ident -filter -working-tree-encoding\n"
        ),
      catch: (cause) =>
        new SourceError({
          reason: "Unavailable",
          message: "the source store could not prepare a repository",
          cause
        })
    })
  })

/** Fetches `revision` (a ref or a full commit sha) of `url` into `repository` as FETCH_HEAD. */
export const fetch = (repository: string, url: string, revision: string, settings: GitSettings) =>
  Effect.gen(function* () {
    const result = yield* run(
      [
        // A redirect is followed on the first request only, to the protocols git allows (never file).
        "-c",
        "http.followRedirects=initial",
        "--git-dir",
        repository,
        "fetch",
        "--quiet",
        "--depth=1",
        "--no-tags",
        "--no-recurse-submodules",
        "--",
        url,
        revision
      ],
      settings
    )
    if (result.code === 0) return
    const what = isCommitSha(revision) ? `commit ${revision}` : `ref ${JSON.stringify(revision)}`
    if (/couldn't find remote ref|not our ref|no such remote ref/i.test(result.stderr))
      return yield* failed(`${what} does not exist in ${displayUrl(url)}`)
    return yield* failed(
      `could not fetch ${what} from ${displayUrl(url)}: ${explain(result.stderr, repository, url)}`
    )
  }).pipe(
    Effect.timeoutOrElse({
      duration: settings.timeout,
      orElse: () =>
        Effect.fail(
          new SourceError({
            reason: "Unavailable",
            message: `git took longer than ${Duration.format(settings.timeout)} to fetch from ${displayUrl(url)}`
          })
        )
    })
  )

export const isCommitSha = (text: string): text is CommitSha => /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(text)

/** The commit FETCH_HEAD points at (peeling an annotated tag), with its author and message. */
export const fetchedCommit = (repository: string, settings: GitSettings) =>
  Effect.gen(function* () {
    const result = yield* run(
      [
        "--git-dir",
        repository,
        "log",
        "-1",
        "--no-show-signature",
        "--format=%H%x00%an%x00%ae%x00%B",
        "FETCH_HEAD"
      ],
      settings
    )
    const [sha = "", name = "", email = "", message = ""] = result.stdout.split("\0")
    if (result.code !== 0 || !isCommitSha(sha))
      return yield* failed(`git could not read the fetched commit: ${explain(result.stderr, repository)}`)
    const author = name === "" && email === "" ? null : `${name} <${email}>`
    const body = message.trimEnd()
    return { commitSha: sha, author, message: body === "" ? null : body } satisfies GitCommit
  })

/** The type of the object at `path` in `commit` ("tree" for a directory), or undefined when there is none. */
export const objectType = (repository: string, commit: string, path: string, settings: GitSettings) =>
  run(["--git-dir", repository, "cat-file", "-t", `${commit}:${path}`], settings).pipe(
    Effect.map((result) => (result.code === 0 ? result.stdout.trim() : undefined))
  )

/** `git archive` of `commit` (limited to `path` when not empty): a tar whose paths start at the tree's root. */
export const archive = (
  repository: string,
  commit: string,
  path: string,
  settings: GitSettings
): Stream.Stream<Uint8Array, SourceError> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const pathspec = path === "" ? [] : ["--", `:(literal)${path}`]
      const git = yield* start(
        ["--git-dir", repository, "archive", "--format=tar", commit, ...pathspec],
        settings
      )
      const outcome = Effect.promise(() => git.finished).pipe(
        Effect.flatMap((finished) => {
          if (finished.error !== undefined) return Effect.fail(notStarted(finished.error))
          if (finished.code === 0) return Effect.void
          const how =
            finished.signal === null ? explain(finished.stderr, repository) : `killed by ${finished.signal}`
          return Effect.fail(failed(`git archive of ${commit.slice(0, 8)} failed: ${how}`))
        })
      )
      return Stream.fromAsyncIterable(
        git.stdout as AsyncIterable<Uint8Array>,
        (cause) =>
          new SourceError({ reason: "Unavailable", message: "reading git archive's output failed", cause })
      ).pipe(Stream.concat(Stream.fromEffectDrain(outcome)))
    })
  )
