/**
 * Workspace scope: a token of workspace A, on workspace B's objects, through every route and every way
 * to name an object — path ids, `ids`, filters and shorthands, body references, cursors, logs, the
 * stream and cancel — gets exactly what it gets for an object that does not exist. Nothing of B leaks,
 * and nothing of B changes.
 *
 * Malformed ids: on the same routes, wherever a path or body names an object by id, text that is no id of
 * that kind (another kind's id, characters outside the alphabet, too long, too short, not quite a UUID) is
 * answered exactly as the id of a missing object — the same status and body, but for the id asked.
 */
import { Access, Id, Storage, Trigger } from "@kiln/core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  byHand,
  call,
  type Reply,
  readyVersion,
  startServer,
  type TestServer,
  workspaceWithApp
} from "./fixtures/server.ts"
import { openStream } from "./fixtures/websocket.ts"

let server: TestServer
let matrix: Awaited<ReturnType<typeof arrange>>
beforeAll(async () => {
  server = await startServer()
  matrix = await arrange()
})
afterAll(() => server.close())

interface Case {
  readonly route: string
  readonly how: string
  /** The request, given the id (or other name) of the object it names, as text (encoded by `send`). */
  readonly send: (name: string) => Promise<Reply>
  /** B's object, and a made-up one of the same kind that exists nowhere. */
  readonly names: readonly [string, string]
  /** The kind of id the route decodes where it takes the name (a path or a body); not for the query language. */
  readonly decodes?: Kind
}

/** Whether `reply`, to a request naming `name`, is `expected`, to one naming `expectedName`, but for the name. */
const answersAs = (reply: Reply, name: string, expected: Reply, expectedName: string) => {
  // As the name is spelled inside a JSON string.
  const spelled = (text: string) => JSON.stringify(text).slice(1, -1)
  return (
    reply.status === expected.status &&
    JSON.stringify(reply.body) ===
      JSON.stringify(expected.body).split(spelled(expectedName)).join(spelled(name))
  )
}

const missing = {
  workspace: "wsp_01jz0000000000000000000000",
  app: "app_01jz0000000000000000000000",
  version: "ver_01jz0000000000000000000000",
  build: "bld_01jz0000000000000000000000",
  token: "tok_01jz0000000000000000000000",
  trigger: "trg_01jz0000000000000000000000",
  webhook: "whk_01jz0000000000000000000000",
  delivery: "dlv_01jz0000000000000000000000"
}
type Kind = keyof typeof missing

const prefixes = {
  workspace: "wsp",
  app: "app",
  version: "ver",
  build: "bld",
  token: "tok",
  trigger: "trg",
  webhook: "whk",
  delivery: "dlv"
} as const satisfies Record<Kind, Id.Prefix>

/** Text that is no id of this kind, though some of it comes close: each near the missing id of the kind. */
const malformed = (kind: Kind): ReadonlyArray<string> => {
  const id = missing[kind]
  const prefix = prefixes[kind]
  const uuid = Id.toUuid(id)
  return [
    kind === "build" ? missing.app : missing.build,
    `${id.slice(0, -1)}u`,
    id.toUpperCase(),
    `${id.slice(0, -2)}.!`,
    `${id.slice(0, -1)}é`,
    `${id.slice(0, -1)}\u0000`,
    `${id} `,
    `${id}0`,
    // 130 bits, where an id has 128: the first character is at most 7.
    `${prefix}_z${id.slice(prefix.length + 2)}`,
    // As long as the bound on ids allows.
    `${prefix}_${"0".repeat(100 - prefix.length - 1)}`,
    `${prefix}_01jz`,
    `${prefix}_`,
    prefix,
    `${uuid.slice(0, -1)}g`,
    uuid.replaceAll("-", ""),
    `${uuid}0`,
    `{${uuid}}`
  ]
}

/** A name as it goes in a path or a query. */
const at = (name: string) => encodeURIComponent(name)

/** The rows a 200 answered: a list's `data`, or the accounts dialect's id → build map. */
const rowsOf = (body: Reply["body"]): ReadonlyArray<unknown> =>
  Array.isArray(body?.data) ? body.data : Object.values(body?.result?.builds ?? { unknown: true })

/** Workspaces A and B, B's objects, and every route × way to name one of them, as A's token asks. */
async function arrange() {
  const a = await workspaceWithApp(server)
  const b = await workspaceWithApp(server)
  const tokenA = await server.token("admin", [a.workspace.id] as never)
  const tokenB = await server.token("admin", [b.workspace.id] as never)
  const tokensOfB = await call(server, "GET", "/api/tokens", { token: tokenB })
  const tokenIdB: string = tokensOfB.body.data.find((t: { workspaceIds: unknown }) =>
    JSON.stringify(t.workspaceIds).includes(b.workspace.id)
  ).id
  const versionB = await readyVersion(server, b.app.id)
  const archiveB = (
    await call(server, "POST", "/api/app-versions", {
      body: { appId: b.app.id, source: { type: "archive" } }
    })
  ).body.id as string
  const runningB = (await call(server, "POST", "/api/builds", { body: { appVersionId: versionB.id } })).body
    .id as string
  const engine = await byHand(server, runningB)
  await engine.log(20)
  const queuedB = (await call(server, "POST", "/api/builds", { body: { appVersionId: versionB.id } })).body
    .id as string
  // B's own cursors: A must not be able to page B's rows with them.
  const pageB = await call(server, "GET", "/api/builds?limit=1", { token: tokenB })
  const cursorB: string = pageB.body.pageInfo.endCursor
  const logCursorB: string = (
    await call(server, "GET", `/api/builds/${runningB}/logs?limit=5`, { token: tokenB })
  ).body.cursor

  const as = (method: string, path: string, body?: unknown) =>
    call(server, method, path, { token: tokenA, body })
  const filter = (value: unknown) => encodeURIComponent(JSON.stringify(value))
  const stream = async (path: string, asProtocol: boolean) => {
    const outcome = await openStream(server.url, path, { token: tokenA, asProtocol })
    if ("opened" in outcome) {
      outcome.opened.cut()
      throw new Error(`the stream of ${path} opened for a token without access`)
    }
    return outcome.refused
  }
  const each = <K extends keyof typeof missing>(kind: K, of: string) => [of, missing[kind]] as const
  const lists = ["workspaces", "apps", "app-versions", "builds", "tokens"] as const
  const triggerB = await server.run(
    Storage.Storage.use((storage) =>
      storage.createTrigger(
        Access.all,
        Trigger.input(b.app.id as never, "b's pushes", { repository: "https://git.example.com/b.git" })
      )
    )
  )
  const webhookB: string = (
    await call(server, "POST", "/api/webhooks", {
      body: { workspaceId: b.workspace.id, url: "https://hooks.example.com/b" }
    })
  ).body.id
  const deliveryB: string = (await call(server, "POST", `/api/webhooks/${webhookB}/ping`)).body.id
  // The accounts dialect names everything by UUID, under A's account (or B's, which A cannot see).
  const uuids = <K extends keyof typeof missing>(kind: K, of: string) =>
    [Id.toUuid(of), Id.toUuid(missing[kind])] as const
  // A path or body that names the object by id: text that is no id of the kind must be answered as missing.
  const byId = (kind: Kind, of: string) => ({ names: each(kind, of), decodes: kind })
  const byUuid = (kind: Kind, of: string) => ({ names: uuids(kind, of), decodes: kind })
  const accountA = `/accounts/${Id.toUuid(a.workspace.id)}/builds`
  const accounts: Array<Case> = [
    {
      route: "GET /accounts/{account}/builds/builds/{build}",
      how: "account",
      ...byUuid("workspace", b.workspace.id),
      send: (account) => as("GET", `/accounts/${at(account)}/builds/builds/${Id.toUuid(runningB)}`)
    },
    ...[queuedB, runningB].flatMap(
      (build): Array<Case> => [
        {
          route: "GET /accounts/{account}/builds/builds/{build}",
          how: "path",
          ...byUuid("build", build),
          send: (id) => as("GET", `${accountA}/builds/${at(id)}`)
        },
        {
          route: "PUT /accounts/{account}/builds/builds/{build}/cancel",
          how: "cancel",
          ...byUuid("build", build),
          send: (id) => as("PUT", `${accountA}/builds/${at(id)}/cancel`)
        },
        {
          route: "GET /accounts/{account}/builds/builds/{build}/logs",
          how: "logs cursor",
          ...byUuid("build", build),
          send: (id) => as("GET", `${accountA}/builds/${at(id)}/logs?cursor=${logCursorB}`)
        }
      ]
    ),
    {
      route: "GET /accounts/{account}/builds/builds",
      how: "version_ids",
      ...byUuid("version", versionB.id),
      send: (id) => as("GET", `${accountA}/builds?version_ids=${at(id)}`)
    },
    {
      route: "GET /accounts/{account}/builds/builds/latest",
      how: "external_script_ids",
      ...byUuid("app", b.app.id),
      send: (id) => as("GET", `${accountA}/builds/latest?external_script_ids=${at(id)}`)
    },
    {
      route: "GET /accounts/{account}/builds/workers/{script}/builds",
      how: "path",
      ...byUuid("app", b.app.id),
      send: (id) => as("GET", `${accountA}/workers/${at(id)}/builds`)
    },
    {
      route: "GET /accounts/{account}/builds/workers/{script}/triggers",
      how: "path",
      ...byUuid("app", b.app.id),
      send: (id) => as("GET", `${accountA}/workers/${at(id)}/triggers`)
    },
    {
      route: "POST /accounts/{account}/builds/triggers",
      how: "body external_script_id",
      ...byUuid("app", b.app.id),
      send: (id) => as("POST", `${accountA}/triggers`, { external_script_id: id, trigger_name: "intruder" })
    },
    {
      route: "PATCH /accounts/{account}/builds/triggers/{trigger}",
      how: "path",
      ...byUuid("trigger", triggerB.id),
      send: (id) => as("PATCH", `${accountA}/triggers/${at(id)}`, { trigger_name: "mine now" })
    },
    {
      route: "DELETE /accounts/{account}/builds/triggers/{trigger}",
      how: "path",
      ...byUuid("trigger", triggerB.id),
      send: (id) => as("DELETE", `${accountA}/triggers/${at(id)}`)
    },
    {
      route: "POST /accounts/{account}/builds/triggers/{trigger}/builds",
      how: "path",
      ...byUuid("trigger", triggerB.id),
      send: (id) => as("POST", `${accountA}/triggers/${at(id)}/builds`, { commit_hash: "f".repeat(40) })
    }
  ]
  // The deployments dialect: B's app is a deployment, named by UUID.
  const deploymentB = Id.toUuid(b.app.id)
  const deployments: Array<Case> = [
    ...(
      [
        ["GET", ""],
        ["GET", "/builds"],
        ["POST", "/deploy"]
      ] as const
    ).map(
      ([method, rest]): Case => ({
        route: `${method} /api/v1/deployments/{deployment}${rest}`,
        how: "path",
        ...byUuid("app", b.app.id),
        send: (id) => as(method, `/api/v1/deployments/${at(id)}${rest}`)
      })
    ),
    {
      route: "POST /api/v1/deployments/{deployment}/upload",
      how: "path",
      ...byUuid("app", b.app.id),
      send: (id) => {
        const form = new FormData()
        form.append("archive", new Blob([new Uint8Array([31, 139, 8, 0])]), "a.tar.gz")
        return call(server, "POST", `/api/v1/deployments/${at(id)}/upload`, { token: tokenA, body: form })
      }
    },
    ...[queuedB, runningB].flatMap(
      (build): Array<Case> => [
        {
          route: "GET /api/v1/deployments/{deployment}/builds/{build}",
          how: "path",
          ...byUuid("build", build),
          send: (id) => as("GET", `/api/v1/deployments/${deploymentB}/builds/${at(id)}`)
        },
        {
          route: "GET /api/v1/deployments/{deployment}/builds/{build}/logs",
          how: "logs",
          ...byUuid("build", build),
          send: (id) => as("GET", `/api/v1/deployments/${deploymentB}/builds/${at(id)}/logs`)
        },
        {
          route: "POST /api/v1/deployments/{deployment}/builds/{build}/logs/ticket",
          how: "path",
          ...byUuid("build", build),
          send: (id) => as("POST", `/api/v1/deployments/${deploymentB}/builds/${at(id)}/logs/ticket`)
        },
        {
          route: "WS /api/v1/deployments/{deployment}/builds/{build}/logs/stream",
          how: "stream",
          ...byUuid("build", build),
          send: (id) => stream(`/api/v1/deployments/${deploymentB}/builds/${at(id)}/logs/stream`, false)
        }
      ]
    ),
    {
      route: "POST /api/v1/deployments",
      how: "body workspace_id",
      ...byUuid("workspace", b.workspace.id),
      send: (id) => as("POST", "/api/v1/deployments", { name: "X", subdomain: "intruder", workspace_id: id })
    }
  ]
  const cases: Array<Case> = [
    ...accounts,
    ...deployments,
    // Path ids.
    ...["", "/push-secret"].map(
      (rest): Case => ({
        route: `GET /api/workspaces/{id}${rest}`,
        how: "path",
        ...byId("workspace", b.workspace.id),
        send: (id) => as("GET", `/api/workspaces/${at(id)}${rest}`)
      })
    ),
    {
      route: "GET /api/apps/{id}",
      how: "path",
      ...byId("app", b.app.id),
      send: (id) => as("GET", `/api/apps/${at(id)}`)
    },
    {
      route: "GET /api/app-versions/{id}",
      how: "path",
      ...byId("version", versionB.id),
      send: (id) => as("GET", `/api/app-versions/${at(id)}`)
    },
    {
      route: "POST /api/app-versions/{id}/archive",
      how: "path",
      ...byId("version", archiveB),
      send: (id) =>
        call(server, "POST", `/api/app-versions/${at(id)}/archive`, {
          token: tokenA,
          body: new Uint8Array([31, 139, 8, 0]),
          headers: { "content-type": "application/gzip" }
        })
    },
    ...[queuedB, runningB].flatMap(
      (build): Array<Case> => [
        {
          route: "GET /api/builds/{id}",
          how: "path",
          ...byId("build", build),
          send: (id) => as("GET", `/api/builds/${at(id)}`)
        },
        {
          route: "POST /api/builds/{id}/redeploy",
          how: "path",
          ...byId("build", build),
          send: (id) => as("POST", `/api/builds/${at(id)}/redeploy`)
        },
        {
          route: "POST /api/builds/{id}/logs/ticket",
          how: "path",
          ...byId("build", build),
          send: (id) => as("POST", `/api/builds/${at(id)}/logs/ticket`)
        },
        {
          route: "POST /api/builds/{id}/cancel",
          how: "cancel",
          ...byId("build", build),
          send: (id) => as("POST", `/api/builds/${at(id)}/cancel`, { reason: "not yours" })
        },
        {
          route: "GET /api/builds/{id}/logs",
          how: "logs",
          ...byId("build", build),
          send: (id) => as("GET", `/api/builds/${at(id)}/logs`)
        },
        {
          route: "GET /api/builds/{id}/logs?format=text",
          how: "logs",
          ...byId("build", build),
          send: (id) => as("GET", `/api/builds/${at(id)}/logs?format=text`)
        },
        {
          route: "GET /api/builds/{id}/logs?cursor=",
          how: "logs cursor",
          ...byId("build", build),
          send: (id) => as("GET", `/api/builds/${at(id)}/logs?cursor=${logCursorB}`)
        },
        {
          route: "WS /api/builds/{id}/logs/stream",
          how: "stream (header)",
          ...byId("build", build),
          send: (id) => stream(`/api/builds/${at(id)}/logs/stream`, false)
        },
        {
          route: "WS /api/builds/{id}/logs/stream",
          how: "stream (subprotocol)",
          ...byId("build", build),
          send: (id) => stream(`/api/builds/${at(id)}/logs/stream?cursor=${logCursorB}`, true)
        }
      ]
    ),
    {
      route: "GET /api/tokens/{id}",
      how: "path",
      ...byId("token", tokenIdB),
      send: (id) => as("GET", `/api/tokens/${at(id)}`)
    },
    {
      route: "DELETE /api/tokens/{id}",
      how: "path",
      ...byId("token", tokenIdB),
      send: (id) => as("DELETE", `/api/tokens/${at(id)}`)
    },
    ...(
      [
        ["GET", ""],
        ["PATCH", "", { enabled: false }],
        ["DELETE", ""],
        ["POST", "/rotate-secret"],
        ["GET", "/deliveries"],
        ["POST", "/ping"]
      ] as const
    ).map(
      ([method, rest, body]): Case => ({
        route: `${method} /api/webhooks/{id}${rest}`,
        how: "path",
        ...byId("webhook", webhookB),
        send: (id) => as(method, `/api/webhooks/${at(id)}${rest}`, body)
      })
    ),
    {
      route: "POST /api/webhooks/{id}/deliveries/{deliveryId}/redeliver",
      how: "path",
      ...byId("delivery", deliveryB),
      send: (id) => as("POST", `/api/webhooks/${webhookB}/deliveries/${at(id)}/redeliver`)
    },
    {
      route: "GET /api/webhooks",
      how: "workspace_id",
      ...byId("workspace", b.workspace.id),
      send: (id) => as("GET", `/api/webhooks?workspace_id=${at(id)}`)
    },
    {
      route: "GET /api/events",
      how: "workspace_id",
      ...byId("workspace", b.workspace.id),
      send: (id) => as("GET", `/api/events?workspace_id=${at(id)}`)
    },
    ...[false, true].map(
      (asProtocol): Case => ({
        route: "WS /api/events/stream",
        how: `workspace_id (${asProtocol ? "subprotocol" : "header"})`,
        ...byId("workspace", b.workspace.id),
        send: (id) => stream(`/api/events/stream?workspace_id=${at(id)}`, asProtocol)
      })
    ),
    // Body references.
    {
      route: "POST /api/apps",
      how: "body workspaceId",
      ...byId("workspace", b.workspace.id),
      send: (id) => as("POST", "/api/apps", { workspaceId: id, handle: "intruder", name: "X", kind: "app" })
    },
    {
      route: "POST /api/app-versions",
      how: "body appId",
      ...byId("app", b.app.id),
      send: (id) => as("POST", "/api/app-versions", { appId: id, source: { type: "archive" } })
    },
    {
      route: "POST /api/builds",
      how: "body appVersionId",
      ...byId("version", versionB.id),
      send: (id) => as("POST", "/api/builds", { appVersionId: id })
    },
    {
      route: "POST /api/webhooks",
      how: "body workspaceId",
      ...byId("workspace", b.workspace.id),
      send: (id) => as("POST", "/api/webhooks", { workspaceId: id, url: "https://hooks.example.com/a" })
    },
    {
      route: "POST /api/tokens",
      how: "body workspaceIds",
      ...byId("workspace", b.workspace.id),
      send: (id) => as("POST", "/api/tokens", { name: "x", role: "read", workspaceIds: [id] })
    },
    // `ids` on every list.
    ...lists.map((list): Case => {
      const ids = {
        workspaces: b.workspace.id,
        apps: b.app.id,
        "app-versions": versionB.id,
        builds: queuedB,
        tokens: tokenIdB
      }
      const kinds = {
        workspaces: "workspace",
        apps: "app",
        "app-versions": "version",
        builds: "build",
        tokens: "token"
      } as const
      return {
        route: `GET /api/${list}`,
        how: "ids",
        names: each(kinds[list], ids[list]),
        send: (id) => as("GET", `/api/${list}?ids=${id}`)
      }
    }),
    // Filters, relations and shorthands.
    {
      route: "GET /api/builds",
      how: "filter id",
      names: each("build", runningB),
      send: (id) => as("GET", `/api/builds?filter=${filter({ id: { eq: id } })}`)
    },
    {
      route: "GET /api/builds",
      how: "filter workspaceId",
      names: each("workspace", b.workspace.id),
      send: (id) => as("GET", `/api/builds?filter=${filter({ workspaceId: { in: [id] } })}`)
    },
    {
      route: "GET /api/builds",
      how: "filter relation",
      names: [b.app.handle, "no-such-handle"],
      send: (handle) => as("GET", `/api/builds?filter=${filter({ app: { handle: { eq: handle } } })}`)
    },
    {
      route: "GET /api/builds",
      how: "filter not",
      names: each("workspace", b.workspace.id),
      send: (id) =>
        as(
          "GET",
          `/api/builds?filter=${filter({ and: [{ workspaceId: { eq: id } }, { not: { status: { eq: "failed" } } }] })}`
        )
    },
    {
      route: "GET /api/builds",
      how: "workspace_id",
      names: each("workspace", b.workspace.id),
      send: (id) => as("GET", `/api/builds?workspace_id=${id}`)
    },
    {
      route: "GET /api/builds",
      how: "app_id",
      names: each("app", b.app.id),
      send: (id) => as("GET", `/api/builds?app_id=${id}`)
    },
    {
      route: "GET /api/builds",
      how: "entity_id",
      names: each("app", b.app.id),
      send: (id) => as("GET", `/api/builds?entity_id=${id}`)
    },
    {
      route: "GET /api/apps",
      how: "workspace_id",
      names: each("workspace", b.workspace.id),
      send: (id) => as("GET", `/api/apps?workspace_id=${id}`)
    },
    {
      route: "GET /api/apps",
      how: "filter handle",
      names: [b.app.handle, "no-such-handle"],
      send: (handle) => as("GET", `/api/apps?filter=${filter({ handle: { eq: handle } })}`)
    },
    {
      route: "GET /api/app-versions",
      how: "app_id",
      names: each("app", b.app.id),
      send: (id) => as("GET", `/api/app-versions?app_id=${id}`)
    },
    {
      route: "GET /api/app-versions",
      how: "workspace_id",
      names: each("workspace", b.workspace.id),
      send: (id) => as("GET", `/api/app-versions?workspace_id=${id}`)
    },
    // Cursors: one issued to B's token is refused like any cursor not issued to this caller.
    ...(["after", "before"] as const).map(
      (param): Case => ({
        route: "GET /api/builds",
        how: `cursor (${param})`,
        names: [cursorB, `${cursorB.slice(0, -4)}AAAA`],
        send: (cursor) => as("GET", `/api/builds?limit=1&${param}=${cursor}`)
      })
    )
  ]

  return { a, b, tokenA, tokenB, tokenIdB, archiveB, queuedB, runningB, triggerB, webhookB, cases }
}

describe("http › workspace scope", () => {
  it("answers A's token on B's objects exactly as on missing ones, through every route and name", async () => {
    const { a, b, tokenA, tokenB, tokenIdB, archiveB, queuedB, runningB, triggerB, webhookB, cases } = matrix
    const failures: Array<string> = []
    const statuses = new Map<number, number>()
    for (const testCase of cases) {
      const [ofB, ofNobody] = testCase.names
      const [replyB, replyMissing] = [await testCase.send(ofB), await testCase.send(ofNobody)]
      const label = `${testCase.route} by ${testCase.how}`
      statuses.set(replyB.status, (statuses.get(replyB.status) ?? 0) + 1)
      if (replyB.status === 200 && rowsOf(replyB.body).length !== 0)
        failures.push(`${label}: listed B's rows`)
      if (replyB.status < 400 && replyB.status !== 200) failures.push(`${label}: ${replyB.status}`)
      if (!answersAs(replyB, ofB, replyMissing, ofNobody)) {
        failures.push(
          `${label}: B's object answered ${replyB.status} ${replyB.text}, a missing one ${replyMissing.status} ${replyMissing.text}`
        )
      }
    }
    const byStatus = [...statuses].map(([status, count]) => `${status}×${count}`).join(" ")
    console.log(
      `scope matrix: ${cases.length} combinations of route × way to name an object (${byStatus}), each as for a missing object`
    )
    expect(failures).toEqual([])
    expect(cases.length).toBeGreaterThanOrEqual(75)

    // Nothing of B changed: its builds were not cancelled or redeployed, its token was not revoked, nothing was added.
    const queued = await call(server, "GET", `/api/builds/${queuedB}`, { token: tokenB })
    expect(queued.body).toMatchObject({ status: "pending", cancelRequestedAt: null })
    expect(
      (await call(server, "GET", `/api/builds/${runningB}`, { token: tokenB })).body.cancelRequestedAt
    ).toBeNull()
    expect(
      (await call(server, "GET", `/api/tokens/${tokenIdB}`, { token: tokenB })).body.revokedAt
    ).toBeNull()
    expect((await call(server, "GET", `/api/app-versions/${archiveB}`, { token: tokenB })).body.status).toBe(
      "pending"
    )
    expect(
      (await call(server, "GET", `/api/builds?workspace_id=${b.workspace.id}`, { token: tokenB })).body
        .pageInfo.total
    ).toBe(2)
    expect(
      (await call(server, "GET", `/api/apps?workspace_id=${b.workspace.id}`, { token: tokenB })).body.pageInfo
        .total
    ).toBe(1)
    const stillB = await server.run(
      Storage.Storage.use((storage) => storage.getTrigger(Access.all, triggerB.id))
    )
    expect(stillB).toEqual(triggerB)
    expect((await call(server, "GET", `/api/webhooks/${webhookB}`, { token: tokenB })).body).toMatchObject({
      enabled: true,
      previousSecretExpiresAt: null
    })
    const deliveriesB = await call(server, "GET", `/api/webhooks/${webhookB}/deliveries`, { token: tokenB })
    expect(deliveriesB.body.data).toHaveLength(1)
    // And A's token still works on A: the refusals above were about scope, not a broken token.
    expect((await call(server, "GET", `/api/apps/${a.app.id}`, { token: tokenA })).status).toBe(200)
  })

  it("answers text that is no id of the kind a path or body names exactly as a missing id", async () => {
    const failures: Array<string> = []
    let asked = 0
    const routes = new Set<string>()
    for (const testCase of matrix.cases) {
      if (testCase.decodes === undefined) continue
      routes.add(testCase.route)
      const ofNobody = testCase.names[1]
      const replyMissing = await testCase.send(ofNobody)
      for (const name of malformed(testCase.decodes)) {
        const reply = await testCase.send(name)
        asked += 1
        if (!answersAs(reply, name, replyMissing, ofNobody)) {
          failures.push(
            `${testCase.route} by ${testCase.how}, ${JSON.stringify(name.slice(0, 40))}: ${reply.status} ${reply.text.slice(0, 160)}; a missing one: ${replyMissing.status} ${replyMissing.text}`
          )
        }
      }
    }
    console.log(
      `malformed ids: ${asked} requests on ${routes.size} routes, each answered as for a missing id`
    )
    expect(failures).toEqual([])
    expect(routes.size).toBeGreaterThanOrEqual(39)

    // Past the bound on ids (100 characters), the bound answers first: no route for a path, a 400 for a body.
    const long = `bld_${"0".repeat(97)}`
    const path = await call(server, "GET", `/api/builds/${long}`, { token: matrix.tokenA })
    expect([path.status, path.body.message]).toEqual([404, `no route for GET /api/builds/${long}`])
    const body = await call(server, "POST", "/api/builds", {
      token: matrix.tokenA,
      body: { appVersionId: long }
    })
    expect([body.status, body.body.error]).toEqual([400, "invalid_request"])
  })
})
