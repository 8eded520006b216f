import pg from "pg";
import { AgentError } from "../../../core/errors.js";
import type { DeploymentAdapters } from "../../../tools/types.js";
import type { DatabaseCapability, SchemaSnapshot } from "../../../tools/database/types.js";

const q = (id: string) => pg.escapeIdentifier(id);
const ident = "([a-z_][a-z0-9_]*)";

export function databaseOf(adapters: DeploymentAdapters, deployment: string): DatabaseCapability {
  if (!adapters.database) throw new AgentError("unavailable", `deployment ${deployment} has no database section in honua-agent.yaml (database: { url: env:HONUA_DATABASE_URL }, see docs/local.md)`);
  return adapters.database;
}

/** One template: the words it understands and the DDL it writes. */
interface Template {
  name: string;
  re: RegExp;
  ddl(m: RegExpExecArray): string;
}

const METHODS = "(gist|gin|brin|btree|hash|spgist|spatial)";
const TEMPLATES: Template[] = [
  {
    name: "index on table.column",
    re: new RegExp(`\\b(?:add|create|build)?\\s*(?:an?\\s+)?(?:${METHODS}\\s+)?index\\s+(?:on|for)\\s+(?:table\\s+)?${ident}\\s*(?:\\.|\\(|\\s+column\\s+|\\s+on\\s+)\\s*${ident}\\)?`, "i"),
    ddl: (m) => {
      const method = (m[1] ?? "").toLowerCase();
      const table = m[2]!, column = m[3]!;
      const using = method === "spatial" ? "gist" : method || (/^(geom|geometry|the_geom|wkb_geometry|footprint)$/.test(column) ? "gist" : "btree");
      return `CREATE INDEX CONCURRENTLY ${q(`${table}_${column}_idx`)} ON ${q(table)} USING ${using} (${q(column)})`;
    },
  },
  {
    name: "index on column of table",
    re: new RegExp(`\\b(?:add|create|build)?\\s*(?:an?\\s+)?(?:${METHODS}\\s+)?index\\s+(?:on|for)\\s+(?:column\\s+)?${ident}\\s+(?:of|in|on)\\s+(?:table\\s+)?${ident}`, "i"),
    ddl: (m) => {
      const method = (m[1] ?? "").toLowerCase();
      const column = m[2]!, table = m[3]!;
      const using = method === "spatial" ? "gist" : method || (/^(geom|geometry|the_geom|wkb_geometry|footprint)$/.test(column) ? "gist" : "btree");
      return `CREATE INDEX CONCURRENTLY ${q(`${table}_${column}_idx`)} ON ${q(table)} USING ${using} (${q(column)})`;
    },
  },
  {
    name: "add column",
    re: new RegExp(`\\badd\\s+(?:a\\s+)?(?:nullable\\s+)?column\\s+${ident}\\s+([a-z][a-z0-9_ ]*?(?:\\([0-9, ]+\\))?)\\s+(?:to|on|in)\\s+(?:table\\s+|the\\s+)?${ident}\\b`, "i"),
    ddl: (m) => `ALTER TABLE ${q(m[3]!)} ADD COLUMN ${q(m[1]!)} ${m[2]!.trim()}`,
  },
  {
    name: "enable extension",
    re: /\b(?:enable|install|add|create)\s+(?:the\s+)?(?:extension\s+)?(postgis(?:_raster|_topology|_tiger_geocoder|_sfcgal)?|pg_trgm|btree_gist|btree_gin|hstore|uuid-ossp|pgcrypto|h3|h3_postgis)(?:\s+extension)?\b/i,
    ddl: (m) => `CREATE EXTENSION IF NOT EXISTS ${q(m[1]!.toLowerCase())}`,
  },
  {
    name: "drop index",
    re: new RegExp(`\\b(?:drop|remove|delete)\\s+(?:the\\s+)?index\\s+${ident}\\b`, "i"),
    ddl: (m) => `DROP INDEX CONCURRENTLY ${q(m[1]!)}`,
  },
  {
    name: "drop column",
    re: new RegExp(`\\b(?:drop|remove|delete)\\s+(?:the\\s+)?column\\s+${ident}\\s+(?:from|of|on)\\s+(?:table\\s+)?${ident}\\b`, "i"),
    ddl: (m) => `ALTER TABLE ${q(m[2]!)} DROP COLUMN ${q(m[1]!)}`,
  },
];

/** The DDL for a described change, from the templates of the common requests; null when none fits. */
export function templateFor(description: string): { sql: string; template: string } | null {
  const text = description.replace(/\s+/g, " ");
  for (const t of TEMPLATES) {
    const m = t.re.exec(text);
    if (m) return { sql: t.ddl(m), template: t.name };
  }
  return null;
}

/** The statements a request stands for: the user's DDL as given, or a template's. */
export function statementsOf(changes: string[] | string | undefined): { sql: string; source: "user" | "template"; template: string | null }[] {
  if (changes === undefined) throw new AgentError("bad-input", "no schema change was given: give the DDL or describe the change (e.g. add a GIST index on features.geom)");
  if (Array.isArray(changes)) return changes.map((sql) => ({ sql, source: "user" as const, template: null }));
  const t = templateFor(changes);
  if (!t) {
    throw new AgentError("bad-input", `could not turn "${changes.slice(0, 120)}" into DDL: the templates know "add a GIST index on features.geom", "add column last_modified timestamptz to layers", "enable postgis_raster", "drop index NAME", "drop column C from T"; otherwise give the SQL. Nothing was changed`);
  }
  return [{ sql: t.sql, source: "template", template: t.template }];
}

/** Every index, table, column, constraint and extension by name. */
export const schemaObjects = (s: SchemaSnapshot): Set<string> => new Set([
  ...s.indexes.map((i) => `index ${i.schema}.${i.name}`),
  ...s.tables.flatMap((t) => [`table ${t.schema}.${t.name}`, ...t.columns.map((c) => `column ${t.schema}.${t.name}.${c.name} ${c.type}`), ...t.constraints.map((c) => `constraint ${t.schema}.${t.name}.${c.name}`)]),
  ...s.extensions.map((e) => `extension ${e.name}`),
]);
