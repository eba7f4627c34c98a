import type { BuildField } from "../../Fields.ts"
import * as OrderBy from "../../OrderBy.ts"
import type { ListQuery } from "../../Query.ts"

/** Those of these builds that are active (claimed and not stopped), as a query storage answers. */
export const activeQuery = (ids: ReadonlyArray<string>): ListQuery<BuildField> => ({
  filter: {
    _tag: "And",
    filters: [
      { _tag: "In", field: "phase", values: ["initializing", "running"], negate: false },
      { _tag: "In", field: "id", values: ids, negate: false }
    ]
  },
  orderBy: OrderBy.complete(OrderBy.defaultOrder),
  limit: 10_000,
  cursor: undefined
})
