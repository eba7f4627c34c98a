/**
 * A process's output as log lines: assembled per stream by a `LineBuffer` that holds back enough for the
 * longest secret, and redacted whole, so a secret written in pieces is still masked.
 */
import { LineBuffer, type Redactor } from "@kiln/core/adapter"

export type OutputStream = "stdout" | "stderr"

export interface OutputLines {
  /** The redacted lines this chunk completes. */
  readonly push: (stream: OutputStream, chunk: Uint8Array | string) => ReadonlyArray<string>
  /** The redacted rest of one stream, once it ends (the buffer can be used again after). */
  readonly end: (stream: OutputStream) => ReadonlyArray<string>
}

export const make = (redactor: Redactor.Redactor): OutputLines => {
  const buffers = {
    stdout: LineBuffer.make({ holdBack: redactor.longest }),
    stderr: LineBuffer.make({ holdBack: redactor.longest })
  }
  return {
    push: (stream, chunk) => buffers[stream].push(chunk).map(redactor.redact),
    end: (stream) => buffers[stream].end().map(redactor.redact)
  }
}
