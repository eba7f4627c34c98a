import { StorageError } from "@kiln/core"
import { describe, expect, it } from "vitest"
import { classifyError } from "../src/internal/classifyError.ts"

// Shaped like better-sqlite3's SqliteError: an Error with a result code, whose message may quote SQL.
const driverError = (
  code: string,
  message = "near \"DROP\": syntax error in SELECT * FROM builds WHERE id = 'bld_1'"
) => Object.assign(new Error(message), { code })

describe("classifyError", () => {
  it.each([
    ["SQLITE_BUSY", "Busy"],
    ["SQLITE_BUSY_SNAPSHOT", "Busy"],
    ["SQLITE_LOCKED", "Busy"],
    ["SQLITE_LOCKED_SHAREDCACHE", "Busy"],
    ["SQLITE_CANTOPEN", "Unavailable"],
    ["SQLITE_CANTOPEN_ISDIR", "Unavailable"],
    ["SQLITE_IOERR", "Unavailable"],
    ["SQLITE_IOERR_SHORT_READ", "Unavailable"],
    ["SQLITE_FULL", "Unavailable"],
    ["SQLITE_READONLY", "Unavailable"],
    ["SQLITE_READONLY_DBMOVED", "Unavailable"],
    ["SQLITE_CORRUPT", "Corrupt"],
    ["SQLITE_CORRUPT_INDEX", "Corrupt"],
    ["SQLITE_NOTADB", "Corrupt"],
    ["SQLITE_SCHEMA", "Corrupt"],
    ["SQLITE_CONSTRAINT_UNIQUE", "Unknown"],
    ["SQLITE_ERROR", "Unknown"],
    ["SQLITE_MISUSE", "Unknown"]
  ])("classifies %s as %s", (code, reason) => {
    const error = classifyError(driverError(code))
    expect(error).toBeInstanceOf(StorageError.StorageError)
    expect(error.reason).toBe(reason)
    expect(error.message).toContain(`(${code})`)
    expect(error.retryable).toBe(reason === "Busy" || reason === "Unavailable")
  })

  it("keeps SQL and values out of the message, and the driver's error in the cause", () => {
    const cause = driverError("SQLITE_ERROR")
    const error = classifyError(cause)
    expect(error.message).not.toMatch(/SELECT|DROP|bld_1|builds/)
    expect(error.cause).toBe(cause)
  })

  it("does not echo a code that is not a SQLite result code", () => {
    const error = classifyError({ code: "SQLITE_BUSY'; DROP TABLE builds; --" })
    expect(error.reason).toBe("Unknown")
    expect(error.message).not.toContain("DROP")
  })

  it("classifies errors without a code as Unknown, or as Unavailable while opening", () => {
    const missingDirectory = new TypeError("Cannot open database because the directory does not exist")
    expect(classifyError(missingDirectory).reason).toBe("Unknown")
    expect(classifyError(missingDirectory, { opening: true }).reason).toBe("Unavailable")
    expect(classifyError("a string").reason).toBe("Unknown")
    expect(classifyError(null).reason).toBe("Unknown")
    expect(classifyError({ code: 5 }).reason).toBe("Unknown")
  })

  it("passes a StorageError raised on purpose through unchanged", () => {
    const raised = new StorageError.StorageError({ reason: "Busy", message: "build changed while written" })
    expect(classifyError(raised)).toBe(raised)
  })
})
