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

/** Exactly the view's fields, in its order (the domain value holds more); nested views by key. */
const viewOf = (fields: object, nested: Record<string, (value: never) => unknown> = {}) => {
  const keys = Object.keys(fields)
  return (value: object): Record<string, unknown> => {
    const out: Record<string, unknown> = {}
    for (const key of keys) {
      const field = (value as Record<string, unknown>)[key]
      if (field !== undefined) out[key] = nested[key] === undefined ? field : nested[key](field as never)
    }
    return out
  }
}

const stepJson = viewOf(Build.BuildStep.fields)

export const buildJson = viewOf(BuildView.fields)
export const buildDetailJson = viewOf(BuildDetailView.fields, {
  steps: (steps: ReadonlyArray<object>) => steps.map(stepJson)
})

/** `200` with a build page, as `page(BuildView)` encodes it. */
export const buildPage = (page: { readonly data: ReadonlyArray<object>; readonly pageInfo: object }) =>
  HttpServerResponse.jsonUnsafe({ data: page.data.map(buildJson), pageInfo: page.pageInfo })
