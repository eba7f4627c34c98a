/**
 * Workspace scope: a token of workspace A, on workspace B's objects, through every route and every way
 * to name an object — path ids, `ids`, filters and shorthands, body references, cursors, logs, the
 * stream and cancel — gets exactly what it gets for an object that does not exist. Nothing of B leaks,
 * and nothing of B changes.
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
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

interface Case {
  readonly route: string
  readonly how: string
  /** The request, given the id (or other name) of the object it names. */
  readonly send: (name: string) => Promise<Reply>
  /** B's object, and a made-up one of the same kind that exists nowhere. */
  readonly names: readonly [string, string]
}

/** A reply with the named object's id replaced, so B's and the missing object's can be compared. */
const normalized = (reply: Reply, name: string) => ({
  status: reply.status,
  body: JSON.parse(JSON.stringify(reply.body).split(name).join("<name>"))
})

const missing = {
  workspace: "wsp_01jz0000000000000000000000",
  app: "app_01jz0000000000000000000000",
  version: "ver_01jz0000000000000000000000",
  build: "bld_01jz0000000000000000000000",
  token: "tok_01jz0000000000000000000000",
  trigger: "trg_01jz0000000000000000000000"
}

/** The rows a 200 answered: a list's `data`, or the accounts dialect's id → build map. */
const rowsOf = (body: Reply["body"]): ReadonlyArray<unknown> =>
  Array.isArray(body?.data) ? body.data : Object.values(body?.result?.builds ?? { unknown: true })

describe("http › workspace scope", () => {
  it("answers A's token on B's objects exactly as on missing ones, through every route and name", async () => {
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
    // The accounts dialect names everything by UUID, under A's account (or B's, which A cannot see).
    const uuids = <K extends keyof typeof missing>(kind: K, of: string) =>
      [Id.toUuid(of), Id.toUuid(missing[kind])] as const
    const accountA = `/accounts/${Id.toUuid(a.workspace.id)}/builds`
    const accounts: Array<Case> = [
      {
        route: "GET /accounts/{account}/builds/builds/{build}",
        how: "account",
        names: uuids("workspace", b.workspace.id),
        send: (account) => as("GET", `/accounts/${account}/builds/builds/${Id.toUuid(runningB)}`)
      },
      ...[queuedB, runningB].flatMap(
        (build): Array<Case> => [
          {
            route: "GET /accounts/{account}/builds/builds/{build}",
            how: "path",
            names: uuids("build", build),
            send: (id) => as("GET", `${accountA}/builds/${id}`)
          },
          {
            route: "PUT /accounts/{account}/builds/builds/{build}/cancel",
            how: "cancel",
            names: uuids("build", build),
            send: (id) => as("PUT", `${accountA}/builds/${id}/cancel`)
          },
          {
            route: "GET /accounts/{account}/builds/builds/{build}/logs",
            how: "logs cursor",
            names: uuids("build", build),
            send: (id) => as("GET", `${accountA}/builds/${id}/logs?cursor=${logCursorB}`)
          }
        ]
      ),
      {
        route: "GET /accounts/{account}/builds/builds",
        how: "version_ids",
        names: uuids("version", versionB.id),
        send: (id) => as("GET", `${accountA}/builds?version_ids=${id}`)
      },
      {
        route: "GET /accounts/{account}/builds/builds/latest",
        how: "external_script_ids",
        names: uuids("app", b.app.id),
        send: (id) => as("GET", `${accountA}/builds/latest?external_script_ids=${id}`)
      },
      {
        route: "GET /accounts/{account}/builds/workers/{script}/builds",
        how: "path",
        names: uuids("app", b.app.id),
        send: (id) => as("GET", `${accountA}/workers/${id}/builds`)
      },
      {
        route: "GET /accounts/{account}/builds/workers/{script}/triggers",
        how: "path",
        names: uuids("app", b.app.id),
        send: (id) => as("GET", `${accountA}/workers/${id}/triggers`)
      },
      {
        route: "POST /accounts/{account}/builds/triggers",
        how: "body external_script_id",
        names: uuids("app", b.app.id),
        send: (id) => as("POST", `${accountA}/triggers`, { external_script_id: id, trigger_name: "intruder" })
      },
      {
        route: "PATCH /accounts/{account}/builds/triggers/{trigger}",
        how: "path",
        names: uuids("trigger", triggerB.id),
        send: (id) => as("PATCH", `${accountA}/triggers/${id}`, { trigger_name: "mine now" })
      },
      {
        route: "DELETE /accounts/{account}/builds/triggers/{trigger}",
        how: "path",
        names: uuids("trigger", triggerB.id),
        send: (id) => as("DELETE", `${accountA}/triggers/${id}`)
      },
      {
        route: "POST /accounts/{account}/builds/triggers/{trigger}/builds",
        how: "path",
        names: uuids("trigger", triggerB.id),
        send: (id) => as("POST", `${accountA}/triggers/${id}/builds`, { commit_hash: "f".repeat(40) })
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
          names: uuids("app", b.app.id),
          send: (id) => as(method, `/api/v1/deployments/${id}${rest}`)
        })
      ),
      {
        route: "POST /api/v1/deployments/{deployment}/upload",
        how: "path",
        names: uuids("app", b.app.id),
        send: (id) => {
          const form = new FormData()
          form.append("archive", new Blob([new Uint8Array([31, 139, 8, 0])]), "a.tar.gz")
          return call(server, "POST", `/api/v1/deployments/${id}/upload`, { token: tokenA, body: form })
        }
      },
      ...[queuedB, runningB].flatMap(
        (build): Array<Case> => [
          {
            route: "GET /api/v1/deployments/{deployment}/builds/{build}",
            how: "path",
            names: uuids("build", build),
            send: (id) => as("GET", `/api/v1/deployments/${deploymentB}/builds/${id}`)
          },
          {
            route: "GET /api/v1/deployments/{deployment}/builds/{build}/logs",
            how: "logs",
            names: uuids("build", build),
            send: (id) => as("GET", `/api/v1/deployments/${deploymentB}/builds/${id}/logs`)
          },
          {
            route: "WS /api/v1/deployments/{deployment}/builds/{build}/logs/stream",
            how: "stream",
            names: uuids("build", build),
            send: (id) => stream(`/api/v1/deployments/${deploymentB}/builds/${id}/logs/stream`, false)
          }
        ]
      )
    ]
    const cases: Array<Case> = [
      ...accounts,
      ...deployments,
      // Path ids.
      {
        route: "GET /api/workspaces/{id}",
        how: "path",
        names: each("workspace", b.workspace.id),
        send: (id) => as("GET", `/api/workspaces/${id}`)
      },
      {
        route: "GET /api/apps/{id}",
        how: "path",
        names: each("app", b.app.id),
        send: (id) => as("GET", `/api/apps/${id}`)
      },
      {
        route: "GET /api/app-versions/{id}",
        how: "path",
        names: each("version", versionB.id),
        send: (id) => as("GET", `/api/app-versions/${id}`)
      },
      {
        route: "POST /api/app-versions/{id}/archive",
        how: "path",
        names: each("version", archiveB),
        send: (id) =>
          call(server, "POST", `/api/app-versions/${id}/archive`, {
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
            names: each("build", build),
            send: (id) => as("GET", `/api/builds/${id}`)
          },
          {
            route: "POST /api/builds/{id}/cancel",
            how: "cancel",
            names: each("build", build),
            send: (id) => as("POST", `/api/builds/${id}/cancel`, { reason: "not yours" })
          },
          {
            route: "GET /api/builds/{id}/logs",
            how: "logs",
            names: each("build", build),
            send: (id) => as("GET", `/api/builds/${id}/logs`)
          },
          {
            route: "GET /api/builds/{id}/logs?format=text",
            how: "logs",
            names: each("build", build),
            send: (id) => as("GET", `/api/builds/${id}/logs?format=text`)
          },
          {
            route: "GET /api/builds/{id}/logs?cursor=",
            how: "logs cursor",
            names: each("build", build),
            send: (id) => as("GET", `/api/builds/${id}/logs?cursor=${logCursorB}`)
          },
          {
            route: "WS /api/builds/{id}/logs/stream",
            how: "stream (header)",
            names: each("build", build),
            send: (id) => stream(`/api/builds/${id}/logs/stream`, false)
          },
          {
            route: "WS /api/builds/{id}/logs/stream",
            how: "stream (subprotocol)",
            names: each("build", build),
            send: (id) => stream(`/api/builds/${id}/logs/stream?cursor=${logCursorB}`, true)
          }
        ]
      ),
      {
        route: "GET /api/tokens/{id}",
        how: "path",
        names: each("token", tokenIdB),
        send: (id) => as("GET", `/api/tokens/${id}`)
      },
      {
        route: "DELETE /api/tokens/{id}",
        how: "path",
        names: each("token", tokenIdB),
        send: (id) => as("DELETE", `/api/tokens/${id}`)
      },
      // Body references.
      {
        route: "POST /api/apps",
        how: "body workspaceId",
        names: each("workspace", b.workspace.id),
        send: (id) => as("POST", "/api/apps", { workspaceId: id, handle: "intruder", name: "X", kind: "app" })
      },
      {
        route: "POST /api/app-versions",
        how: "body appId",
        names: each("app", b.app.id),
        send: (id) => as("POST", "/api/app-versions", { appId: id, source: { type: "archive" } })
      },
      {
        route: "POST /api/builds",
        how: "body appVersionId",
        names: each("version", versionB.id),
        send: (id) => as("POST", "/api/builds", { appVersionId: id })
      },
      {
        route: "POST /api/tokens",
        how: "body workspaceIds",
        names: each("workspace", b.workspace.id),
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
      if (JSON.stringify(normalized(replyB, ofB)) !== JSON.stringify(normalized(replyMissing, ofNobody))) {
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
    expect(cases.length).toBeGreaterThanOrEqual(67)

    // Nothing of B changed: its builds were not cancelled, its token was not revoked, nothing was added.
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
    const stillB = await server.run(
      Storage.Storage.use((storage) => storage.getTrigger(Access.all, triggerB.id))
    )
    expect(stillB).toEqual(triggerB)
    // And A's token still works on A: the refusals above were about scope, not a broken token.
    expect((await call(server, "GET", `/api/apps/${a.app.id}`, { token: tokenA })).status).toBe(200)
  })
})
