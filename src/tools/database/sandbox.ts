import type { Database } from "better-sqlite3";
import { z } from "zod";
import { AgentError } from "../../core/errors.js";
import type { TwinContext } from "../twins.js";
import { SANDBOX_TWINS } from "../twins.js";
import { ApplyOutcome, BackupResult, Op, SchemaSnapshot, backoffMs, check, ddlId, describeExpect, type ApplyOptions, type DatabaseCapability, type DbStats, type TableInfo } from "./types.js";

const GB = 1024 ** 3;
const MB = 1024 ** 2;

/** Honua's schema as the sandbox simulates it: table sizes that make lock analysis matter, PostGIS installed. */
function seedSchema(at: string, seed: number): SchemaSnapshot {
  const t = (name: string, rows: number, bytes: number, columns: TableInfo["columns"], constraints: TableInfo["constraints"] = []): TableInfo => ({ schema: "public", name, rows, bytes, columns, constraints });
  const col = (name: string, type: string, nullable = true, dflt: string | null = null) => ({ name, type, nullable, default: dflt });
  const scale = 1 + (seed % 5) / 10;
  return {
    at,
    serverVersion: "15.6 (sandbox)",
    tables: [
      t("features", Math.round(1_240_000 * scale), Math.round(1.9 * GB * scale), [col("id", "bigint", false), col("layer_id", "integer", false), col("geom", "geometry(Geometry,4326)"), col("properties", "jsonb"), col("updated_at", "timestamp with time zone", true, "now()")], [{ name: "features_pkey", type: "p", definition: "PRIMARY KEY (id)", validated: true }]),
      t("layers", 340, 96 * 1024, [col("id", "integer", false), col("service_id", "integer", false), col("name", "text", false), col("title", "text"), col("srid", "integer", true, "4326")], [{ name: "layers_pkey", type: "p", definition: "PRIMARY KEY (id)", validated: true }]),
      t("services", 24, 16 * 1024, [col("id", "integer", false), col("name", "text", false), col("enabled", "boolean", false, "true")], [{ name: "services_pkey", type: "p", definition: "PRIMARY KEY (id)", validated: true }]),
      t("stac_items", 58_000, Math.round(410 * MB * scale), [col("collection", "text", false), col("id", "text", false), col("content", "jsonb", false), col("datetime", "timestamp with time zone")], [{ name: "stac_items_pkey", type: "p", definition: "PRIMARY KEY (collection, id)", validated: true }]),
    ],
    indexes: [
      { schema: "public", table: "features", name: "features_pkey", definition: "CREATE UNIQUE INDEX features_pkey ON public.features USING btree (id)", valid: true, method: "btree", columns: ["id"] },
      { schema: "public", table: "features", name: "features_layer_id_idx", definition: "CREATE INDEX features_layer_id_idx ON public.features USING btree (layer_id)", valid: true, method: "btree", columns: ["layer_id"] },
      { schema: "public", table: "layers", name: "layers_pkey", definition: "CREATE UNIQUE INDEX layers_pkey ON public.layers USING btree (id)", valid: true, method: "btree", columns: ["id"] },
      { schema: "public", table: "services", name: "services_pkey", definition: "CREATE UNIQUE INDEX services_pkey ON public.services USING btree (id)", valid: true, method: "btree", columns: ["id"] },
      { schema: "public", table: "stac_items", name: "stac_items_pkey", definition: "CREATE UNIQUE INDEX stac_items_pkey ON public.stac_items USING btree (collection, id)", valid: true, method: "btree", columns: ["collection", "id"] },
    ],
    extensions: [{ name: "plpgsql", version: "1.0" }, { name: "postgis", version: "3.3.2" }],
    availableExtensions: ["btree_gist", "hstore", "pg_trgm", "plpgsql", "postgis", "postgis_raster", "postgis_topology", "uuid-ossp"],
    longTransactions: [],
  };
}

function tables(db: Database): void {
  db.transaction(() => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS database_schema (deployment TEXT PRIMARY KEY, snapshot TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS database_ops (deployment TEXT NOT NULL, key TEXT NOT NULL, op TEXT NOT NULL, result TEXT NOT NULL, PRIMARY KEY (deployment, key, op));
    `);
  }).immediate();
}

const Intent = z.object({ op: Op, found: z.enum(["holds", "missing", "invalid"]) });

/** What a statement does to the simulated catalog, read from its expectation (the analysis already parsed it). */
function mutate(s: SchemaSnapshot, op: Op): void {
  const e = op.expect;
  const table = (schema: string, name: string) => s.tables.find((t) => t.schema === schema && t.name === name);
  switch (e.kind) {
    case "index": {
      const cols = /\(([^)]*)\)\s*$/.exec(op.sql)?.[1]?.split(",").map((c) => c.trim().replace(/"/g, "")) ?? [];
      const method = /USING (\w+)/i.exec(op.sql)?.[1]?.toLowerCase() ?? "btree";
      s.indexes = s.indexes.filter((i) => !(i.schema === e.schema && i.name === e.name));
      s.indexes.push({ schema: e.schema, table: e.table, name: e.name, definition: op.sql.replace(/ CONCURRENTLY/i, ""), valid: true, method, columns: cols });
      break;
    }
    case "no-index":
      s.indexes = s.indexes.filter((i) => !(i.schema === e.schema && i.name === e.name));
      break;
    case "column": {
      const t = table(e.schema, e.table);
      if (!t) throw new AgentError("failed", `sandbox: no table ${e.schema}.${e.table}`);
      let c = t.columns.find((x) => x.name === e.column);
      if (!c) {
        const type = new RegExp(`ADD COLUMN "?${e.column}"? ([^,]+?)(?: DEFAULT (.+))?$`, "i").exec(op.sql);
        c = { name: e.column, type: type?.[1]?.trim() ?? "text", nullable: true, default: type?.[2]?.trim() ?? null };
        t.columns.push(c);
      }
      if (e.notNull !== undefined) c.nullable = !e.notNull;
      const d = /SET DEFAULT (.+)$/i.exec(op.sql);
      if (d) c.default = d[1]!.trim();
      if (/DROP DEFAULT/i.test(op.sql)) c.default = null;
      break;
    }
    case "no-column": {
      const t = table(e.schema, e.table);
      if (t) t.columns = t.columns.filter((c) => c.name !== e.column);
      break;
    }
    case "constraint": {
      const t = table(e.schema, e.table);
      if (!t) throw new AgentError("failed", `sandbox: no table ${e.schema}.${e.table}`);
      const c = t.constraints.find((x) => x.name === e.name);
      if (c) c.validated = c.validated || e.validated;
      else t.constraints.push({ name: e.name, type: /FOREIGN KEY/i.test(op.sql) ? "f" : "c", definition: op.sql.replace(/^.*ADD CONSTRAINT "?[^ "]+"? /i, ""), validated: e.validated });
      break;
    }
    case "no-constraint": {
      const t = table(e.schema, e.table);
      if (t) t.constraints = t.constraints.filter((c) => c.name !== e.name);
      break;
    }
    case "extension":
      if (!s.extensions.some((x) => x.name === e.name)) s.extensions.push({ name: e.name, version: "sandbox" });
      break;
    case "no-extension":
      s.extensions = s.extensions.filter((x) => x.name !== e.name);
      break;
    case "table":
      if (!table(e.schema, e.name)) s.tables.push({ schema: e.schema, name: e.name, rows: 0, bytes: 8192, columns: [], constraints: [] });
      break;
    case "no-table":
      s.tables = s.tables.filter((t) => !(t.schema === e.schema && t.name === e.name));
      s.indexes = s.indexes.filter((i) => !(i.schema === e.schema && i.table === e.name));
      break;
  }
}

/** The inverse SQL as an operation on the simulated catalog (the analysis wrote it; the sandbox reads it back). */
function inverseOp(sql: string, forward: Op): Op {
  const e = forward.expect;
  const expect: Op["expect"] =
    e.kind === "index" ? { kind: "no-index", schema: e.schema, name: e.name }
      : e.kind === "column" && /DROP COLUMN/i.test(sql) ? { kind: "no-column", schema: e.schema, table: e.table, column: e.column }
        : e.kind === "column" ? { ...e, ...(/DROP NOT NULL/i.test(sql) ? { notNull: false } : {}) }
          : e.kind === "constraint" ? { kind: "no-constraint", schema: e.schema, table: e.table, name: e.name }
            : e.kind === "extension" ? { kind: "no-extension", name: e.name }
              : e.kind === "table" ? { kind: "no-table", schema: e.schema, name: e.name }
                : e;
  return { ...forward, sql, expect };
}

/** The simulated PostgreSQL: the sandbox's own catalog per deployment, table sizes, lock contention under `provision-failure`. */
export function sandboxDatabase(ctx: TwinContext): DatabaseCapability {
  const db = ctx.world.db;
  let ready = false;
  const init = () => {
    if (ready) return;
    tables(db);
    ready = true;
  };
  const name = ctx.deployment;
  const load = (): SchemaSnapshot => {
    init();
    const row = db.prepare(`SELECT snapshot FROM database_schema WHERE deployment = ?`).get(name) as { snapshot: string } | undefined;
    if (row) return SchemaSnapshot.parse(JSON.parse(row.snapshot));
    const s = seedSchema(ctx.clock.now().toISOString(), ctx.config.seed ?? 0);
    db.prepare(`INSERT INTO database_schema (deployment, snapshot) VALUES (?, ?) ON CONFLICT DO NOTHING`).run(name, JSON.stringify(s));
    return s;
  };
  const save = (s: SchemaSnapshot) => db.prepare(`UPDATE database_schema SET snapshot = ? WHERE deployment = ?`).run(JSON.stringify(s), name);
  const get = <T>(key: string, op: string, schema: z.ZodType<T>): T | undefined => {
    init();
    const row = db.prepare(`SELECT result FROM database_ops WHERE deployment = ? AND key = ? AND op = ?`).get(name, key, op) as { result: string } | undefined;
    return row ? schema.parse(JSON.parse(row.result)) : undefined;
  };
  const put = (key: string, op: string, v: unknown) => db.prepare(`INSERT INTO database_ops (deployment, key, op, result) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`).run(name, key, op, JSON.stringify(v));
  const options = { lockTimeoutMs: 1000, statementTimeoutMs: 6 * 3_600_000, retries: { attempts: 5, baseMs: 200, maxMs: 5000 }, backup: { mode: "schema" as const } };
  const smokeQueries = [
    { name: "features in a bbox", sql: "SELECT count(*) FROM features WHERE geom && ST_MakeEnvelope(8.5, 47.3, 8.6, 47.4, 4326)", expectIndex: undefined },
    { name: "layer list", sql: "SELECT id, name FROM layers ORDER BY id" },
  ];
  /** Simulated query time: a bbox query on features is a sequential scan until a GiST index on geom exists. */
  const queryMs = (sql: string, s: SchemaSnapshot): number => {
    const minute = Math.floor(ctx.clock.now().getTime() / 60_000);
    const jitter = 1 + ((minute * 7919) % 13) / 200;
    if (/features/i.test(sql) && /geom/i.test(sql)) {
      const gist = s.indexes.some((i) => i.table === "features" && i.method === "gist" && i.columns.includes("geom") && i.valid);
      const f = s.tables.find((t) => t.name === "features");
      return Number(((gist ? 4.2 : (f?.bytes ?? GB) / (220 * MB) * 1000) * jitter * (ctx.faults.has("latency-regression") ? 3 : 1)).toFixed(2));
    }
    return Number((0.8 * jitter).toFixed(2));
  };
  const cap: DatabaseCapability = {
    describe: () => `the sandbox's simulated PostgreSQL of ${name}`,
    smokeQueries,
    options,
    honuaVersion: null,
    async introspect() {
      return { ...load(), at: ctx.clock.now().toISOString() };
    },
    async apply(op: Op, key: string, o: ApplyOptions) {
      const prior = get(key, "ddl", ApplyOutcome);
      if (prior) return prior;
      const s = load();
      const found = check(op.expect, s);
      if (!get(key, "ddl-intent", Intent)) put(key, "ddl-intent", { op, found });
      if (found === "holds") {
        const r: ApplyOutcome = { sql: op.sql, outcome: "already", attempts: 0, lockTimeouts: 0, ms: 0, note: `${describeExpect(op.expect)} already` };
        put(key, "ddl", r);
        return r;
      }
      // `provision-failure`: a session holds ACCESS EXCLUSIVE on the table for the whole run, so every try times out.
      if (ctx.faults.has("provision-failure") && op.on !== null) {
        for (let a = 0; a < o.retries.attempts; a++) {
          o.progress?.(`lock on ${op.on} not granted within ${o.lockTimeoutMs} ms (attempt ${a + 1} of ${o.retries.attempts}); a session holds ACCESS EXCLUSIVE`);
          await ctx.clock.sleep(o.lockTimeoutMs + (a + 1 < o.retries.attempts ? backoffMs(a, o.retries, () => 0.5) : 0));
        }
        return { sql: op.sql, outcome: "lock-busy", attempts: o.retries.attempts, lockTimeouts: o.retries.attempts, ms: o.retries.attempts * o.lockTimeoutMs, note: `lock not granted within ${o.lockTimeoutMs} ms, ${o.retries.attempts} times` };
      }
      const t = s.tables.find((x) => op.on === `${x.schema}.${x.name}`);
      const ms = op.concurrent && t ? Math.round((t.bytes / (15 * MB)) * 2500) : 40;
      await ctx.clock.sleep(ms);
      mutate(s, op);
      save(s);
      const r: ApplyOutcome = { sql: op.sql, outcome: found === "invalid" ? "repaired" : "applied", attempts: 1, lockTimeouts: 0, ms, note: null };
      put(key, "ddl", r);
      return r;
    },
    async backup(key) {
      const prior = get(key, "backup", BackupResult);
      if (prior) return prior;
      const s = load();
      const r: BackupResult = { location: `sandbox://backups/${name}/${key.replace(/[^a-z0-9]+/gi, "-")}.dump`, mode: "schema", bytes: 18_000 + s.tables.length * 2400, entries: s.tables.length * 3 + s.indexes.length + s.extensions.length, verifiedBy: "pg_restore --list (simulated)", command: "pg_dump -Fc --schema-only (simulated)" };
      put(key, "backup", r);
      return r;
    },
    async explain(sql) {
      const s = load();
      const gist = s.indexes.find((i) => i.table === "features" && i.method === "gist" && i.columns.includes("geom") && i.valid);
      const uses = /features/i.test(sql) && /geom/i.test(sql) && gist ? [gist.name] : [];
      return { indexes: uses, plan: uses.length ? `Bitmap Index Scan on ${uses[0]}` : "Seq Scan" };
    },
    async time(sql) {
      return queryMs(sql, load());
    },
    async stats(): Promise<DbStats> {
      const s = load();
      if (ctx.faults.has("no-data")) return { at: ctx.clock.now().toISOString(), queryMs: null, lockWaits: null, connections: null, maxConnections: null, replicationLagSeconds: null };
      const q = smokeQueries.map((x) => queryMs(x.sql, s));
      return { at: ctx.clock.now().toISOString(), queryMs: Number((q.reduce((a, b) => a + b, 0) / q.length).toFixed(3)), lockWaits: ctx.faults.has("error-spike") ? 14 : 0, connections: 38, maxConnections: 200, replicationLagSeconds: 0.4 };
    },
    async provisioned(key) {
      const intent = get(key, "ddl-intent", Intent);
      if (!intent || intent.found === "holds" || intent.op.inverse.kind !== "drop") return null;
      return check(intent.op.expect, load()) === "missing" ? null : { id: ddlId(key), description: intent.op.inverse.description };
    },
    async deprovision(id, key) {
      const m = /^ddl:(.+)$/.exec(id);
      const intent = m ? get(m[1]!, "ddl-intent", Intent) : undefined;
      if (!m || !intent || intent.op.inverse.kind !== "drop") throw new AgentError("forbidden", `${id} is not something honua-agent created on ${name}; refused`);
      if (intent.found === "holds" || get(key, "ddl-undo", z.null()) !== undefined) return;
      const s = load();
      mutate(s, inverseOp(intent.op.inverse.sql, intent.op));
      save(s);
      put(key, "ddl-undo", null);
    },
    async restore(target, value, key) {
      const m = /^ddl:(.+)$/.exec(target);
      const intent = m ? get(m[1]!, "ddl-intent", Intent) : undefined;
      if (!m || !intent || intent.op.inverse.kind !== "restore" || intent.op.inverse.sql !== value) throw new AgentError("forbidden", `${target}: not a restore honua-agent recorded on ${name}; refused`);
      if (intent.found === "holds" || get(key, "ddl-undo", z.null()) !== undefined) return;
      const s = load();
      if (check(intent.op.expect, s) === "missing") return;
      mutate(s, inverseOp(value, intent.op));
      save(s);
      put(key, "ddl-undo", null);
    },
  };
  return cap;
}

SANDBOX_TWINS.push((ctx) => ({ database: sandboxDatabase(ctx) }));
