import { AppVersion, Build, Id } from "@kiln/core"
import { DateTime } from "effect"

const epoch = DateTime.makeUnsafe(1_700_000_000_000)
const id = <P extends Id.Prefix>(prefix: P, n: number) =>
  Id.fromUuid(prefix, `0190b3a0-0000-7000-8000-${n.toString(16).padStart(12, "0")}`)!

export const readyVersion: AppVersion.AppVersion = AppVersion.make(
  id("ver", 1),
  id("wsp", 1),
  {
    appId: id("app", 1),
    source: { type: "git", url: "https://git.example.com/a.git", commitSha: "a".repeat(40) }
  },
  epoch
)

/** A queued build of `readyVersion`, as storage would create it. */
export const queuedBuild = (n = 1): Build.Build =>
  Build.make(
    id("bld", n),
    readyVersion,
    n,
    { appVersionId: readyVersion.id, trigger: "manual", createdBy: null },
    epoch
  )
