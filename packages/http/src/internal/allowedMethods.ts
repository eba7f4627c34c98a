/**
 * The methods each of Kiln's paths answers, read from the OpenAPI documents of the surfaces a host
 * mounts (every route is in one: the WebSocket and push routes are added to them by hand), so that a
 * known path asked with another method is a 405 naming the methods it takes, not a 404; and the documented
 * path a request was for, which names it in the metrics with a bounded set of values.
 */
import { FindMyWay } from "effect/http"
import type { OpenApi } from "effect/http-api"

const methods = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const

export interface Paths {
  /**
   * The methods a request URL's path (with Kiln's `prefix`) takes, `HEAD` beside `GET` as the router
   * serves it; empty for a path Kiln does not have.
   */
  readonly allowed: (url: string) => ReadonlyArray<string>
  /** The documented path (`/api/builds/{id}`) a request was for, or undefined for one Kiln does not have. */
  readonly route: (method: string, url: string) => string | undefined
}

export const make = (
  documents: ReadonlyArray<OpenApi.OpenAPISpec>,
  getPaths: ReadonlyArray<string>,
  prefix: string,
  /** Routes outside the documents that take more than GET, as `[method, path]`. */
  others: ReadonlyArray<readonly [string, string]> = []
): Paths => {
  const router = FindMyWay.make<string>()
  const add = (method: string, path: string) =>
    router.on(method, `${prefix}${path.replace(/\{([^}]+)\}/g, ":$1")}` as `/${string}`, path)
  for (const document of documents) {
    for (const [path, item] of Object.entries(document.paths)) {
      for (const method of Object.keys(item)) {
        const upper = method.toUpperCase()
        if ((methods as ReadonlyArray<string>).includes(upper)) add(upper, path)
      }
    }
  }
  for (const path of getPaths) add("GET", path)
  for (const [method, path] of others) add(method, path)
  return {
    allowed: (url) => {
      const allowed = methods.filter((method) => router.find(method, url) !== undefined)
      return allowed.flatMap((method) => (method === "GET" ? ["GET", "HEAD"] : [method]))
    },
    route: (method, url) => router.find(method === "HEAD" ? "GET" : method, url)?.handler
  }
}
