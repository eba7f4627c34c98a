import { StorageError } from "@kiln/core"
import { describe, expect, it } from "vitest"
import { classifyError } from "../src/internal/classifyError.ts"

// Shaped like pg's DatabaseError: an Error with a SQLSTATE, whose message may quote SQL or values.
const driverError = (
  code: string,
  message = "syntax error at or near \"DROP\" in SELECT * FROM builds WHERE id = 'bld_1'"
) => Object.assign(new Error(message), { code })

describe("classifyError", () => {
  it.each([
    ["40001", "Busy"],
    ["40P01", "Busy"],
    ["55P03", "Busy"],
    ["08000", "Unavailable"],
    ["08006", "Unavailable"],
    ["08P01", "Unavailable"],
    ["57P01", "Unavailable"],
    ["57P02", "Unavailable"],
    ["57P03", "Unavailable"],
    ["53000", "Unavailable"],
    ["53100", "Unavailable"],
    ["53300", "Unavailable"],
    ["XX001", "Corrupt"],
    ["XX002", "Corrupt"],
    ["XX000", "Unknown"],
    ["23505", "Unknown"],
    ["42P01", "Unknown"],
    ["57014", "Unknown"],
    ["ECONNREFUSED", "Unavailable"],
    ["ECONNRESET", "Unavailable"],
    ["ETIMEDOUT", "Unavailable"]
  ])("classifies %s as %s", (code, reason) => {
    const error = classifyError(driverError(code))
    expect(error).toBeInstanceOf(StorageError.StorageError)
    expect(error.reason).toBe(reason)
    expect(error.message).toContain(`(${code})`)
    expect(error.retryable).toBe(reason === "Busy" || reason === "Unavailable")
  })

  it("keeps SQL and values out of the message, and the driver's error in the cause", () => {
    const cause = driverError("42601")
    const error = classifyError(cause)
    expect(error.message).not.toMatch(/SELECT|DROP|bld_1|builds/)
    expect(error.cause).toBe(cause)
  })

  it("does not echo a code that is neither a SQLSTATE nor a socket error", () => {
    const error = classifyError({ code: "40001'; DROP TABLE builds; --" })
    expect(error.reason).toBe("Unknown")
    expect(error.message).not.toContain("DROP")
  })

  it("classifies lost connections, pool errors and refused addresses as Unavailable", () => {
    for (const message of [
      "Connection terminated unexpectedly",
      "Connection terminated due to connection timeout",
      "timeout exceeded when trying to connect",
      "Cannot use a pool after calling end on the pool"
    ]) {
      expect(classifyError(new Error(message)).reason).toBe("Unavailable")
    }
    // Connecting to `localhost` tries each of its addresses; Node reports them together.
    const refused = new AggregateError([
      Object.assign(new Error("connect ECONNREFUSED ::1:5432"), { code: "ECONNREFUSED" })
    ])
    expect(classifyError(refused)).toMatchObject({
      reason: "Unavailable",
      message: expect.stringContaining("ECONNREFUSED")
    })
  })

  it("classifies errors without a code as Unknown, or as Unavailable while connecting", () => {
    const odd = new TypeError("something else went wrong")
    expect(classifyError(odd).reason).toBe("Unknown")
    expect(classifyError(odd, { connecting: true }).reason).toBe("Unavailable")
    expect(classifyError("a string").reason).toBe("Unknown")
    expect(classifyError(null).reason).toBe("Unknown")
    expect(classifyError({ code: 40001 }).reason).toBe("Unknown")
  })

  it("passes a StorageError raised on purpose through unchanged", () => {
    const raised = new StorageError.StorageError({ reason: "Busy", message: "build changed while written" })
    expect(classifyError(raised)).toBe(raised)
  })
})
