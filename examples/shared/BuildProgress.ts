/**
 * How the examples show a build as it runs: its log lines scroll by, under one progress line
 * (status · current step · lines · elapsed) that is rewritten in place on a terminal, and printed as a
 * plain line whenever the status or step changes when the output is a file or a pipe. Then a summary.
 */
import type { Build, BuildState, LogLine } from "@kiln/core"
import { DateTime } from "effect"

export interface BuildProgress {
  /** A log line, printed above the progress line. */
  readonly line: (line: Pick<LogLine.LogLine, "stream" | "text" | "step">) => void
  readonly status: (status: BuildState.Status) => void
  /** Clears the progress line: call it before printing anything else. */
  readonly done: () => void
}

export const make = (out: NodeJS.WriteStream = process.stdout): BuildProgress => {
  const tty = out.isTTY === true
  const started = Date.now()
  let status: BuildState.Status = "pending"
  let step: string | null = null
  let lines = 0
  let shown = ""
  let plain = ""

  const text = () => {
    const elapsed = ((Date.now() - started) / 1000).toFixed(1)
    return `⏳ ${status} · ${step ?? (status === "pending" ? "waiting for the engine" : "starting")} · ${lines} lines · ${elapsed}s`
  }
  const clear = () => (shown === "" ? "" : "\r\x1b[K")
  // One row, or `\r` would leave the wrapped part behind (the emoji takes two columns).
  const oneRow = (line: string) =>
    out.columns > 3 && line.length > out.columns - 3 ? `${line.slice(0, out.columns - 4)}…` : line
  const render = () => {
    if (tty) {
      shown = oneRow(text())
      out.write(`${clear()}${shown}`)
    } else if (`${status} ${step}` !== plain) {
      plain = `${status} ${step}`
      out.write(`${text()}\n`)
    }
  }
  // On a terminal the elapsed time keeps moving while the build is quiet.
  const ticker = tty ? setInterval(render, 200) : undefined
  ticker?.unref()
  render()

  return {
    line: (line) => {
      lines++
      step = line.step ?? step
      out.write(`${clear()}${tty && line.stream === "system" ? `\x1b[2m${line.text}\x1b[0m` : line.text}\n`)
      shown = ""
      render()
    },
    status: (next) => {
      status = next
      render()
    },
    done: () => {
      clearInterval(ticker)
      if (tty) out.write(clear())
      shown = ""
    }
  }
}

/** What the summary shows: a build with its steps, as storage or the API returns it. */
export type Finished = Pick<Build.Build, "status" | "startedAt" | "completedAt" | "imageTag" | "error"> & {
  readonly steps: ReadonlyArray<Pick<Build.BuildStep, "name" | "status">>
}

/** The outcome, each step, and how to run the image it made. */
export const summary = (build: Finished): string => {
  const seconds =
    build.startedAt !== null && build.completedAt !== null
      ? (DateTime.toEpochMillis(build.completedAt) - DateTime.toEpochMillis(build.startedAt)) / 1000
      : 0
  return [
    `${build.status === "completed" ? "✔" : "✘"} ${build.status} in ${seconds.toFixed(1)}s`,
    ...build.steps.map((step) => `  ${step.status.padEnd(9)} ${step.name}`),
    ...(build.imageTag === null ? [] : [`image: ${build.imageTag}  (docker run --rm ${build.imageTag})`]),
    ...(build.error === null ? [] : [`error: ${build.error}`])
  ].join("\n")
}
