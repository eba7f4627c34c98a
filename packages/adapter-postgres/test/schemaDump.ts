/**
 * The schema of one PostgreSQL schema as readable SQL, built from the catalog: the embedded server ships
 * no `pg_dump`. Tables in name order, each with its columns in their order (type, collation when not the
 * type's, default, NOT NULL), its constraints, its storage settings, then its indexes and triggers; the
 * schema's functions last. Names are printed unqualified, and a search_path pinned to the schema as
 * `<schema>`, so two schemas migrated alike dump alike.
 */
import { Effect } from "effect"
import pg from "pg"
import { clientConfig } from "../src/internal/connection.ts"
import * as PgTesting from "../src/testing.ts"

interface Column {
  readonly table: string
  readonly column: string
  readonly type: string
  readonly collation: string | null
  readonly default: string | null
  readonly not_null: boolean
  readonly storage: string | null
  readonly compression: string | null
}

interface Definition {
  readonly table: string
  readonly definition: string
}

// Every query reads one schema, `$1`. The connection's search_path is that schema, so most of the
// catalog's functions print its names bare; pg_get_indexdef and pg_get_functiondef qualify them anyway,
// and that prefix is cut from the dump.
const columns = `
SELECT quote_ident(c.relname) AS table, quote_ident(a.attname) AS column,
  format_type(a.atttypid, a.atttypmod) AS type,
  CASE WHEN a.attcollation <> t.typcollation THEN quote_ident(co.collname) END AS collation,
  pg_get_expr(d.adbin, d.adrelid) AS default,
  a.attnotnull AS not_null,
  CASE WHEN a.attstorage <> t.typstorage THEN
    CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END
  END AS storage,
  CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END AS compression
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE n.nspname = $1 AND c.relkind = 'r'
ORDER BY c.relname COLLATE "C", a.attnum`

// NOT NULL constraints (contype 'n', PostgreSQL 18) show on their columns.
const constraints = `
SELECT quote_ident(c.relname) AS table,
  'CONSTRAINT ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid) AS definition
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND k.contype <> 'n'
ORDER BY c.relname COLLATE "C", position(k.contype IN 'puxfct'), k.conname COLLATE "C"`

const tableOptions = `
SELECT quote_ident(c.relname) AS table, array_to_string(c.reloptions, ', ') AS definition
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind = 'r' AND c.reloptions IS NOT NULL`

// The indexes of primary key, unique and exclusion constraints come with their constraint.
const indexes = `
SELECT quote_ident(c.relname) AS table, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_class x ON x.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND NOT EXISTS (
  SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x')
)
ORDER BY c.relname COLLATE "C", x.relname COLLATE "C"`

const triggers = `
SELECT quote_ident(c.relname) AS table, pg_get_triggerdef(t.oid) AS definition
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND NOT t.tgisinternal
ORDER BY c.relname COLLATE "C", t.tgname COLLATE "C"`

const functions = `
SELECT pg_get_functiondef(p.oid) AS definition
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = $1
ORDER BY p.proname COLLATE "C", pg_get_function_identity_arguments(p.oid) COLLATE "C"`

// What the dump does not print must not pass unseen: sequences, views, types of their own. A serial
// column's sequence shows as that column's default.
const unprinted = `
SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
  WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN 'foreign table' ELSE 'relation' END || ' ' || c.relname AS object
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind NOT IN ('r', 'i', 't') AND NOT EXISTS (
  SELECT 1 FROM pg_depend d
  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a' AND d.refobjsubid > 0
)
UNION ALL
SELECT 'type ' || t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = $1 AND t.typtype <> 'c' AND t.typelem = 0`

const byTable = (rows: ReadonlyArray<Definition>, table: string) =>
  rows.filter((row) => row.table === table).map((row) => row.definition)

const render = (parts: {
  readonly columns: ReadonlyArray<Column>
  readonly constraints: ReadonlyArray<Definition>
  readonly tableOptions: ReadonlyArray<Definition>
  readonly indexes: ReadonlyArray<Definition>
  readonly triggers: ReadonlyArray<Definition>
  readonly functions: ReadonlyArray<{ readonly definition: string }>
}): string => {
  const tables = [...new Set(parts.columns.map((column) => column.table))]
  const blocks = tables.map((table) => {
    const columns = parts.columns.filter((column) => column.table === table)
    const lines = [
      ...columns.map(
        (column) =>
          `${column.column} ${column.type}` +
          (column.collation === null ? "" : ` COLLATE ${column.collation}`) +
          (column.default === null ? "" : ` DEFAULT ${column.default}`) +
          (column.not_null ? " NOT NULL" : "")
      ),
      ...byTable(parts.constraints, table)
    ]
    const options = byTable(parts.tableOptions, table).map((options) => ` WITH (${options})`)
    const alters = columns.flatMap((column) => [
      ...(column.storage === null
        ? []
        : [`ALTER TABLE ${table} ALTER COLUMN ${column.column} SET STORAGE ${column.storage};`]),
      ...(column.compression === null
        ? []
        : [`ALTER TABLE ${table} ALTER COLUMN ${column.column} SET COMPRESSION ${column.compression};`])
    ])
    const statements = [...byTable(parts.indexes, table), ...byTable(parts.triggers, table)].map(
      (statement) => `${statement};`
    )
    return [
      `CREATE TABLE ${table} (\n${lines.map((line) => `  ${line}`).join(",\n")}\n)${options.join("")};`,
      ...alters,
      ...statements
    ].join("\n")
  })
  return [...blocks, ...parts.functions.map((row) => `${row.definition.trimEnd()};`)]
    .map((block) => `${block}\n`)
    .join("\n")
}

/** The dump of `schema` in the test database, read on a connection of its own. */
export const schemaDump = (schema: string): Effect.Effect<string> =>
  Effect.promise(async () => {
    const client = new pg.Client(clientConfig({ connectionString: PgTesting.databaseUrl(), schema }))
    await client.connect()
    try {
      const read = async <Row extends pg.QueryResultRow>(text: string) =>
        (await client.query<Row>(text, [schema])).rows
      const missing = await read<{ object: string }>(unprinted)
      if (missing.length > 0) {
        throw new Error(
          `the schema dump does not print ${missing.map((row) => row.object).join(", ")}: teach test/schemaDump.ts`
        )
      }
      // A search_path names the schema bare when it can, quoted otherwise.
      const [{ prefix, bare, quoted }] = await read<{ prefix: string; bare: string; quoted: string }>(
        "SELECT quote_ident($1) || '.' AS prefix, quote_literal($1) AS bare, quote_literal(quote_ident($1)) AS quoted"
      )
      return (
        render({
          columns: await read<Column & pg.QueryResultRow>(columns),
          constraints: await read<Definition & pg.QueryResultRow>(constraints),
          tableOptions: await read<Definition & pg.QueryResultRow>(tableOptions),
          indexes: await read<Definition & pg.QueryResultRow>(indexes),
          triggers: await read<Definition & pg.QueryResultRow>(triggers),
          functions: await read<{ definition: string }>(functions)
        })
          .replaceAll(prefix, "")
          // A function's search_path pinned to the schema, as Kiln's connections set it, prints the same for any name.
          .replaceAll(`SET search_path TO ${quoted}`, "SET search_path TO <schema>")
          .replaceAll(`SET search_path TO ${bare}`, "SET search_path TO <schema>")
      )
    } finally {
      await client.end()
    }
  })
