/**
 * The methods each of Kiln's paths answers, read from the OpenAPI documents of the surfaces a host
 * mounts (every route is in one: the WebSocket and push routes are added to them by hand), so that a
 * known path asked with another method is a 405 naming the methods it takes, not a 404.
 */
import { FindMyWay } from "effect/http"
import type { OpenApi } from "effect/http-api"

const methods = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const

/**
 * A lookup from a request URL (with Kiln's `prefix`) to the methods its path takes, `HEAD` beside `GET`
 * as the router serves it; empty for a path Kiln does not have.
 */
export const make = (
  documents: ReadonlyArray<OpenApi.OpenAPISpec>,
  getPaths: ReadonlyArray<string>,
  prefix: string
): ((url: string) => ReadonlyArray<string>) => {
  const router = FindMyWay.make<true>()
  const add = (method: string, path: string) => router.on(method, `${prefix}${path}` as `/${string}`, true)
  for (const document of documents) {
    for (const [path, item] of Object.entries(document.paths)) {
      for (const method of Object.keys(item)) {
        const upper = method.toUpperCase()
        if ((methods as ReadonlyArray<string>).includes(upper))
          add(upper, path.replace(/\{([^}]+)\}/g, ":$1"))
      }
    }
  }
  for (const path of getPaths) add("GET", path)
  return (url) => {
    const allowed = methods.filter((method) => router.find(method, url) !== undefined)
    return allowed.flatMap((method) => (method === "GET" ? ["GET", "HEAD"] : [method]))
  }
}
