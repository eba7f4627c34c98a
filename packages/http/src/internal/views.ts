/**
 * JSON for the answers read most — a build, a page of builds — without the schema's encoder, which costs
 * more than the rest of such a request (a page of 100 builds: about a millisecond). A view is its
 * schema's fields picked from the domain value, which is JSON already: its DateTimes write themselves as
 * the same ISO strings the schema makes (`toJSON`), and metadata is JSON by its schema. A property test
 * holds the text equal to the schema's encoding.
 */
import { Build } from "@kiln/core"
import { HttpServerResponse } from "effect/http"
import { BuildDetailView, BuildView } from "../Api.ts"

/** Exactly the view's fields, in its order (the domain value holds more). */
const viewOf = (fields: object) => {
  const keys = Object.keys(fields)
  return (value: object): Record<string, unknown> => {
    const out: Record<string, unknown> = {}
    for (const key of keys) {
      const field = (value as Record<string, unknown>)[key]
      if (field !== undefined) out[key] = field
    }
    return out
  }
}

const stepJson = viewOf(Build.BuildStep.fields)
const detailJson = viewOf(BuildDetailView.fields)

export const buildJson = viewOf(BuildView.fields)
/** `steps` is the view's last field, so it stays last when replaced. */
export const buildDetailJson = (build: { readonly steps: ReadonlyArray<object> }) => ({
  ...detailJson(build),
  steps: build.steps.map(stepJson)
})

/** `200` with a build page, as `page(BuildView)` encodes it. */
export const buildPage = (page: { readonly data: ReadonlyArray<object>; readonly pageInfo: object }) =>
  HttpServerResponse.jsonUnsafe({ data: page.data.map(buildJson), pageInfo: page.pageInfo })
