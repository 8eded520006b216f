import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { loadModule, parseSync } from "libpg-query";
import { deparseSync } from "pgsql-deparser";
import pg from "pg";
import { AgentError } from "../../core/errors.js";
import type { Expect, Inverse, LockMode, Op, SchemaSnapshot, TableInfo } from "./types.js";

type Node = Record<string, unknown>;
const isNode = (x: unknown): x is Node => typeof x === "object" && x !== null && !Array.isArray(x);
const node = (x: unknown): Node => (isNode(x) ? x : {});
const list = (x: unknown): unknown[] => (Array.isArray(x) ? x : []);
const str = (x: unknown): string | undefined => (typeof x === "string" ? x : undefined);
const sval = (x: unknown): string => str(node(node(x).String).sval) ?? "";
/** The single key of a node wrapper (`{ IndexStmt: {...} }` -> ["IndexStmt", {...}]). */
const unwrap = (x: unknown): [string, Node] => {
  const n = node(x);
  const k = Object.keys(n)[0] ?? "";
  return [k, node(n[k])];
};
const q = (id: string): string => pg.escapeIdentifier(id);
const qn = (schema: string, name: string): string => `${q(schema)}.${q(name)}`;

let loaded: Promise<void> | null = null;
/** The PostgreSQL parser (libpg-query, WebAssembly) loads once per process. */
export async function parserReady(): Promise<void> {
  loaded ??= loadModule();
  await loaded;
}

/** One statement the user or a template gave, as it will run. */
export interface Analyzed {
  original: string;
  /** The statements that run instead, when they differ from the original (CONCURRENTLY, NOT VALID + VALIDATE, split). */
  rewritten: string | null;
  ops: Op[];
  /** Lock, in words, for the gate ("SHARE UPDATE EXCLUSIVE on public.features (writes continue)"). */
  lock: string;
  estimate: string | null;
  notes: string[];
  /** A DROP (or anything whose inverse loses data): the gate is `delete`. */
  destructive: boolean;
}

/** Splits and parses SQL with PostgreSQL's own parser; malformed SQL is bad input naming the position. */
export async function parseStatements(sql: string): Promise<{ text: string; stmt: unknown }[]> {
  await parserReady();
  let tree: unknown;
  try {
    tree = parseSync(sql);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const pos = isNode(e) && isNode(e.sqlDetails) && typeof e.sqlDetails.cursorPosition === "number" ? ` at character ${e.sqlDetails.cursorPosition + 1}` : "";
    throw new AgentError("bad-input", `the SQL does not parse (PostgreSQL parser: ${msg}${pos}); nothing was changed`);
  }
  const stmts = list(node(tree).stmts);
  if (stmts.length === 0) throw new AgentError("bad-input", "no SQL statement was given; nothing was changed");
  return stmts.map((s) => {
    const n = node(s);
    const start = typeof n.stmt_location === "number" ? n.stmt_location : 0;
    const len = typeof n.stmt_len === "number" && n.stmt_len > 0 ? n.stmt_len : sql.length - start;
    return { text: sql.slice(start, start + len).trim(), stmt: n.stmt };
  });
}

const deparse = (kind: string, body: Node): string => deparseSync({ [kind]: body } as never, { pretty: false });

/** Rough PostgreSQL throughput on this class of machine: sequential read, btree and GiST builds (MB/s). */
const RATE = { scan: 200, btree: 60, gist: 15, other: 30 } as const;
const mb = (bytes: number) => bytes / 1024 / 1024;
const dur = (s: number): string => (s < 1 ? "under 1 s" : s < 90 ? `~${Math.round(s)} s` : `~${Math.round(s / 60)} min`);
const sizeOf = (t: TableInfo | undefined): string => (t ? `${Math.round(t.rows).toLocaleString("en-US")} rows, ${mb(t.bytes) < 1 ? `${Math.round(t.bytes / 1024)} kB` : `${mb(t.bytes).toFixed(0)} MB`}` : "table not found");

/** Functions whose default PostgreSQL cannot store once for every existing row: adding a column with one rewrites the table. */
const VOLATILE = new Set(["random", "gen_random_uuid", "uuid_generate_v4", "clock_timestamp", "timeofday", "nextval", "txid_current", "uuid_generate_v1"]);
function volatileCall(x: unknown): string | null {
  if (Array.isArray(x)) {
    for (const y of x) {
      const v = volatileCall(y);
      if (v) return v;
    }
    return null;
  }
  if (!isNode(x)) return null;
  for (const [k, v] of Object.entries(x)) {
    if (k === "FuncCall") {
      const name = list(node(v).funcname).map(sval).at(-1) ?? "";
      if (VOLATILE.has(name.toLowerCase())) return name;
    }
    const inner = volatileCall(v);
    if (inner) return inner;
  }
  return null;
}

interface Ctx {
  snapshot: SchemaSnapshot;
  table(schema: string, name: string): TableInfo | undefined;
}

const relOf = (rel: Node): { schema: string; name: string } => ({ schema: str(rel.schemaname) ?? "public", name: str(rel.relname) ?? "" });
const typeName = (t: Node): string => {
  const names = list(t.names).map(sval).filter((n) => n !== "pg_catalog");
  const mods = list(t.typmods).map((m) => {
    const c = node(node(m).A_Const);
    const iv = node(c.ival).ival;
    return typeof iv === "number" ? String(iv) : sval(c.sval ? { String: c.sval } : {});
  });
  return `${names.join(".")}${mods.length ? `(${mods.join(",")})` : ""}${list(t.arrayBounds).length ? "[]" : ""}`;
};

function indexStmt(text: string, body: Node, c: Ctx): Analyzed {
  const rel = relOf(node(body.relation));
  const t = c.table(rel.schema, rel.name);
  if (!t) throw new AgentError("bad-input", `CREATE INDEX on ${rel.schema}.${rel.name}: no such table in the database; nothing was changed`);
  const cols = list(body.indexParams).map((p) => str(node(unwrap(p)[1]).name) ?? "expr");
  const method = str(body.accessMethod) ?? "btree";
  const notes: string[] = [];
  const out: Node = { ...body };
  if (!str(body.idxname)) {
    out.idxname = `${rel.name}_${cols.join("_")}_idx`.slice(0, 63);
    notes.push(`named ${out.idxname} (an unnamed index cannot be checked, repaired or dropped by name)`);
  }
  const name = String(out.idxname);
  const plain = body.concurrent !== true;
  out.concurrent = true;
  if (plain) notes.push("plain CREATE INDEX holds a SHARE lock that blocks every write for the whole build: rewritten to CONCURRENTLY");
  if (out.if_not_exists === true) {
    // IF NOT EXISTS would keep an INVALID leftover silently; the agent checks the catalog instead.
    out.if_not_exists = false;
    notes.push("IF NOT EXISTS dropped: the agent checks the catalog itself, so an INVALID leftover is rebuilt instead of kept");
  }
  if (out.unique === true) notes.push("UNIQUE: the build fails if duplicates exist; a failed CONCURRENTLY build leaves an INVALID index, which the agent drops");
  const sql = deparse("IndexStmt", out);
  const rate = method === "gist" || method === "spgist" ? RATE.gist : method === "btree" ? RATE.btree : RATE.other;
  const secs = mb(t.bytes) / rate;
  const inverse: Inverse = {
    kind: "drop", sql: `DROP INDEX CONCURRENTLY IF EXISTS ${qn(rel.schema, name)}`, resourceKind: "index",
    description: `index ${rel.schema}.${name} (${method} on ${rel.name}(${cols.join(", ")}))`, deletes: `the index ${rel.schema}.${name} only; no table data`,
  };
  return {
    original: text,
    rewritten: sql === text ? null : sql,
    ops: [{ sql, lock: "SHARE UPDATE EXCLUSIVE", on: `${rel.schema}.${rel.name}`, concurrent: true, expect: { kind: "index", schema: rel.schema, table: rel.name, name }, inverse }],
    lock: `SHARE UPDATE EXCLUSIVE on ${rel.schema}.${rel.name} (reads and writes continue; other DDL waits)${plain ? "; the original took SHARE (writes blocked)" : ""}`,
    estimate: `${sizeOf(t)}: build ${dur(secs * 2.5)} (two table scans, waits for open transactions)${plain ? `; as given, writes would be blocked ${dur(secs)}` : ""}`,
    notes,
    destructive: false,
  };
}

function alterTable(text: string, body: Node, c: Ctx): Analyzed {
  const rel = relOf(node(body.relation));
  const t = c.table(rel.schema, rel.name);
  if (!t) throw new AgentError("bad-input", `ALTER TABLE ${rel.schema}.${rel.name}: no such table in the database; nothing was changed`);
  const on = `${rel.schema}.${rel.name}`;
  const cmds = list(body.cmds).map((x) => node(node(x).AlterTableCmd));
  const ops: Op[] = [];
  const notes: string[] = [];
  const locks: string[] = [];
  const estimates: string[] = [];
  let destructive = false;
  const one = (cmd: Node): string => deparse("AlterTableStmt", { ...body, cmds: [{ AlterTableCmd: cmd }] });
  const scan = dur(mb(t.bytes) / RATE.scan);
  if (cmds.length > 1) notes.push(`split into ${cmds.length} statements, each in its own session with its own short lock`);
  for (const cmd of cmds) {
    const sub = str(cmd.subtype) ?? "";
    switch (sub) {
      case "AT_AddColumn": {
        const def = node(node(cmd.def).ColumnDef);
        const col = str(def.colname) ?? "";
        const cons = list(def.constraints).map((x) => node(node(x).Constraint));
        const dflt = cons.find((k) => k.contype === "CONSTR_DEFAULT");
        const notNull = cons.some((k) => k.contype === "CONSTR_NOTNULL");
        const vol = dflt ? volatileCall(dflt.raw_expr) : null;
        if (notNull && !dflt && t.rows > 0) throw new AgentError("bad-input", `ADD COLUMN ${col} NOT NULL without a default fails on ${on} (${sizeOf(t)}): add it nullable, backfill, then SET NOT NULL; nothing was changed`);
        if (vol) notes.push(`volatile default ${vol}(): PostgreSQL rewrites all of ${on} (${sizeOf(t)}) under ACCESS EXCLUSIVE, ${scan}+; add the column without a default, then SET DEFAULT and backfill in batches`);
        if (cons.some((k) => k.contype === "CONSTR_FOREIGN" || k.contype === "CONSTR_UNIQUE" || k.contype === "CONSTR_PRIMARY")) throw new AgentError("bad-input", `ADD COLUMN ${col} with an inline key constraint: add the column, then the constraint as its own statement (so it can be NOT VALID / built concurrently); nothing was changed`);
        ops.push({
          sql: one(cmd), lock: "ACCESS EXCLUSIVE", on, concurrent: false,
          expect: { kind: "column", schema: rel.schema, table: rel.name, column: col },
          inverse: { kind: "drop", sql: `ALTER TABLE ${qn(rel.schema, rel.name)} DROP COLUMN IF EXISTS ${q(col)}`, resourceKind: "column", description: `column ${on}.${col} (${typeName(node(def.typeName))})`, deletes: `the column ${on}.${col} and every value written to it since` },
        });
        locks.push(`ACCESS EXCLUSIVE on ${on}, ${vol ? `for the table rewrite (${scan}+)` : "for milliseconds (catalog only)"}`);
        break;
      }
      case "AT_SetNotNull": {
        const col = str(cmd.name) ?? "";
        const ck = `${rel.name}_${col}_not_null`.slice(0, 63);
        const tbl = qn(rel.schema, rel.name);
        const dropCk = `ALTER TABLE ${tbl} DROP CONSTRAINT IF EXISTS ${q(ck)}`;
        ops.push(
          { sql: `ALTER TABLE ${tbl} ADD CONSTRAINT ${q(ck)} CHECK (${q(col)} IS NOT NULL) NOT VALID`, lock: "ACCESS EXCLUSIVE", on, concurrent: false, expect: { kind: "constraint", schema: rel.schema, table: rel.name, name: ck, validated: false }, inverse: { kind: "restore", sql: dropCk, description: `drop the check ${ck}` } },
          { sql: `ALTER TABLE ${tbl} VALIDATE CONSTRAINT ${q(ck)}`, lock: "SHARE UPDATE EXCLUSIVE", on, concurrent: false, expect: { kind: "constraint", schema: rel.schema, table: rel.name, name: ck, validated: true }, inverse: { kind: "restore", sql: dropCk, description: `drop the check ${ck}` } },
          { sql: `ALTER TABLE ${tbl} ALTER COLUMN ${q(col)} SET NOT NULL`, lock: "ACCESS EXCLUSIVE", on, concurrent: false, expect: { kind: "column", schema: rel.schema, table: rel.name, column: col, notNull: true }, inverse: { kind: "restore", sql: `ALTER TABLE ${tbl} ALTER COLUMN ${q(col)} DROP NOT NULL`, description: `${on}.${col} nullable again` } },
          { sql: dropCk, lock: "ACCESS EXCLUSIVE", on, concurrent: false, expect: { kind: "no-constraint", schema: rel.schema, table: rel.name, name: ck }, inverse: { kind: "impossible", why: "dropping the helper check needs no undo (the column stays NOT NULL until its own inverse)" } },
        );
        notes.push(`SET NOT NULL scans ${on} under ACCESS EXCLUSIVE (reads and writes blocked ${scan}): rewritten to CHECK ... NOT VALID, VALIDATE (writes continue), then SET NOT NULL, which uses the validated check and skips the scan`);
        locks.push(`ACCESS EXCLUSIVE on ${on} for milliseconds (twice); SHARE UPDATE EXCLUSIVE while validating`);
        estimates.push(`validate ${scan} with writes continuing`);
        break;
      }
      case "AT_AddConstraint": {
        const k = node(node(cmd.def).Constraint);
        const type = str(k.contype) ?? "";
        const name = str(k.conname);
        if (type === "CONSTR_UNIQUE" || type === "CONSTR_PRIMARY") throw new AgentError("bad-input", `ADD ${type === "CONSTR_UNIQUE" ? "UNIQUE" : "PRIMARY KEY"} builds an index under ACCESS EXCLUSIVE: create the unique index CONCURRENTLY first, then ADD CONSTRAINT ... USING INDEX; nothing was changed`);
        if (type !== "CONSTR_FOREIGN" && type !== "CONSTR_CHECK") throw new AgentError("bad-input", `ALTER TABLE ${on} ADD CONSTRAINT of type ${type.replace("CONSTR_", "")} is not one this agent can apply safely; nothing was changed`);
        if (!name) throw new AgentError("bad-input", `ADD CONSTRAINT on ${on} needs a name (the agent validates and drops it by name); nothing was changed`);
        const tbl = qn(rel.schema, rel.name);
        const drop = `ALTER TABLE ${tbl} DROP CONSTRAINT IF EXISTS ${q(name)}`;
        const already = k.skip_validation === true || k.initially_valid === false;
        const notValid = { ...k, skip_validation: true, initially_valid: false };
        ops.push(
          { sql: one({ ...cmd, def: { Constraint: notValid } }), lock: type === "CONSTR_FOREIGN" ? "SHARE ROW EXCLUSIVE" : "ACCESS EXCLUSIVE", on, concurrent: false, expect: { kind: "constraint", schema: rel.schema, table: rel.name, name, validated: false }, inverse: { kind: "restore", sql: drop, description: `drop the constraint ${name}` } },
        );
        if (!already) {
          ops.push({ sql: `ALTER TABLE ${tbl} VALIDATE CONSTRAINT ${q(name)}`, lock: "SHARE UPDATE EXCLUSIVE", on, concurrent: false, expect: { kind: "constraint", schema: rel.schema, table: rel.name, name, validated: true }, inverse: { kind: "restore", sql: drop, description: `drop the constraint ${name}` } });
          notes.push(`${type === "CONSTR_FOREIGN" ? "a new foreign key" : "a new check"} scans ${on} under ${type === "CONSTR_FOREIGN" ? "SHARE ROW EXCLUSIVE (writes blocked)" : "ACCESS EXCLUSIVE"}: rewritten to NOT VALID, then VALIDATE CONSTRAINT (writes continue)`);
          estimates.push(`validate ${scan} with writes continuing`);
        } else notes.push(`NOT VALID as given: existing rows are not checked until someone runs VALIDATE CONSTRAINT ${name}`);
        locks.push(`${type === "CONSTR_FOREIGN" ? "SHARE ROW EXCLUSIVE" : "ACCESS EXCLUSIVE"} on ${on} for milliseconds; SHARE UPDATE EXCLUSIVE while validating`);
        break;
      }
      case "AT_ColumnDefault": {
        const col = str(cmd.name) ?? "";
        const before = t.columns.find((x) => x.name === col);
        if (!before) throw new AgentError("bad-input", `ALTER COLUMN ${col}: ${on} has no such column; nothing was changed`);
        const tbl = qn(rel.schema, rel.name);
        const vol = volatileCall(cmd.def);
        if (vol) notes.push(`volatile default ${vol}(): only new rows get it (no rewrite for SET DEFAULT); existing rows keep their values`);
        ops.push({
          sql: one(cmd), lock: "ACCESS EXCLUSIVE", on, concurrent: false,
          expect: { kind: "column", schema: rel.schema, table: rel.name, column: col },
          inverse: { kind: "restore", sql: before.default === null ? `ALTER TABLE ${tbl} ALTER COLUMN ${q(col)} DROP DEFAULT` : `ALTER TABLE ${tbl} ALTER COLUMN ${q(col)} SET DEFAULT ${before.default}`, description: `${on}.${col} default back to ${before.default ?? "none"}` },
        });
        locks.push(`ACCESS EXCLUSIVE on ${on} for milliseconds (catalog only)`);
        break;
      }
      case "AT_DropColumn": {
        const col = str(cmd.name) ?? "";
        destructive = true;
        ops.push({ sql: one(cmd), lock: "ACCESS EXCLUSIVE", on, concurrent: false, expect: { kind: "no-column", schema: rel.schema, table: rel.name, column: col }, inverse: { kind: "impossible", why: `the values of ${on}.${col} are gone once it is dropped; only the backup taken before has them` } });
        locks.push(`ACCESS EXCLUSIVE on ${on} for milliseconds`);
        notes.push(`DROP COLUMN destroys ${on}.${col}'s data: a point of no return (the backup is the only way back); check that this Honua version no longer reads it`);
        break;
      }
      case "AT_DropConstraint": {
        const name = str(cmd.name) ?? "";
        const found = t.constraints.find((x) => x.name === name);
        destructive = true;
        ops.push({
          sql: one(cmd), lock: "ACCESS EXCLUSIVE", on, concurrent: false, expect: { kind: "no-constraint", schema: rel.schema, table: rel.name, name },
          inverse: found ? { kind: "restore", sql: `ALTER TABLE ${qn(rel.schema, rel.name)} ADD CONSTRAINT ${q(name)} ${found.definition}${/^(CHECK|FOREIGN KEY)/.test(found.definition) ? " NOT VALID" : ""}`, description: `re-add ${name} (${found.definition})` } : { kind: "impossible", why: `${name} is not on ${on}` },
        });
        locks.push(`ACCESS EXCLUSIVE on ${on} for milliseconds`);
        break;
      }
      default:
        throw new AgentError("bad-input", `ALTER TABLE ${on}: ${sub.replace(/^AT_/, "")} is not a change this agent knows how to run without blocking (${sub === "AT_AlterColumnType" ? "a type change rewrites the table under ACCESS EXCLUSIVE: add a new column, backfill, switch" : "refused rather than run blind"}); nothing was changed`);
    }
  }
  const sqls = ops.map((o) => o.sql);
  return { original: text, rewritten: sqls.length === 1 && sqls[0] === text ? null : sqls.join(";\n"), ops, lock: locks.join("; "), estimate: [sizeOf(t), ...estimates].join(": "), notes, destructive };
}

function dropStmt(text: string, body: Node, c: Ctx): Analyzed {
  const type = str(body.removeType) ?? "";
  const names = list(body.objects).map((o) => list(node(node(o).List).items).map(sval));
  if (names.length !== 1) throw new AgentError("bad-input", "drop one object per statement (each is gated and checked on its own); nothing was changed");
  const parts = names[0]!;
  const [schema, name] = parts.length > 1 ? [parts[0]!, parts[1]!] : ["public", parts[0]!];
  const cascade = body.behavior === "DROP_CASCADE";
  if (cascade) throw new AgentError("bad-input", `DROP ... CASCADE removes objects nobody listed; drop each one explicitly; nothing was changed`);
  switch (type) {
    case "OBJECT_INDEX": {
      const idx = c.snapshot.indexes.find((i) => i.schema === schema && i.name === name);
      const sql = `DROP INDEX CONCURRENTLY IF EXISTS ${qn(schema, name)}`;
      return {
        original: text, rewritten: body.concurrent === true ? null : sql,
        ops: [{ sql, lock: "SHARE UPDATE EXCLUSIVE", on: idx ? `${idx.schema}.${idx.table}` : null, concurrent: true, expect: { kind: "no-index", schema, name }, inverse: idx ? { kind: "restore", sql: idx.definition.replace(/^CREATE (UNIQUE )?INDEX /, "CREATE $1INDEX CONCURRENTLY "), description: `rebuild ${schema}.${name}` } : { kind: "impossible", why: `${schema}.${name} does not exist` } }],
        lock: `SHARE UPDATE EXCLUSIVE on ${idx ? `${idx.schema}.${idx.table}` : "its table"} (writes continue)${body.concurrent === true ? "" : "; plain DROP INDEX takes ACCESS EXCLUSIVE (reads blocked): rewritten to CONCURRENTLY"}`,
        estimate: idx ? `queries that used ${name} fall back to other plans at once` : `${schema}.${name} does not exist: nothing to drop`,
        notes: idx ? [`rollback rebuilds it: ${idx.definition}`] : [],
        destructive: true,
      };
    }
    case "OBJECT_TABLE": {
      const t = c.table(schema, name);
      return {
        original: text, rewritten: null,
        ops: [{ sql: text, lock: "ACCESS EXCLUSIVE", on: `${schema}.${name}`, concurrent: false, expect: { kind: "no-table", schema, name }, inverse: { kind: "impossible", why: `the rows of ${schema}.${name} are gone once it is dropped; only the backup has them` } }],
        lock: `ACCESS EXCLUSIVE on ${schema}.${name} for milliseconds`, estimate: sizeOf(t), notes: [`DROP TABLE destroys ${sizeOf(t)}: a point of no return`], destructive: true,
      };
    }
    case "OBJECT_EXTENSION":
      return {
        original: text, rewritten: null,
        ops: [{ sql: text, lock: "ACCESS EXCLUSIVE", on: null, concurrent: false, expect: { kind: "no-extension", name }, inverse: { kind: "impossible", why: `objects that depended on ${name} are not recreated by reinstalling it` } }],
        lock: "ACCESS EXCLUSIVE on the extension's own objects", estimate: null, notes: [`DROP EXTENSION ${name}: columns and functions of its types fail the statement unless dropped first`], destructive: true,
      };
    default:
      throw new AgentError("bad-input", `DROP of ${type.replace("OBJECT_", "").toLowerCase()} is not a change this agent runs; nothing was changed`);
  }
}

function createExtension(text: string, body: Node, c: Ctx): Analyzed {
  const name = str(body.extname) ?? "";
  if (!c.snapshot.availableExtensions.includes(name) && !c.snapshot.extensions.some((e) => e.name === name)) {
    throw new AgentError("bad-input", `extension ${name} is not available on this server (pg_available_extensions); install its package first; nothing was changed`);
  }
  const sql = `CREATE EXTENSION IF NOT EXISTS ${q(name)}`;
  return {
    original: text, rewritten: sql === text ? null : sql,
    ops: [{ sql, lock: "NONE", on: null, concurrent: false, expect: { kind: "extension", name }, inverse: { kind: "drop", sql: `DROP EXTENSION IF EXISTS ${q(name)}`, resourceKind: "extension", description: `extension ${name}`, deletes: `the extension ${name} and its functions and types (refused by PostgreSQL while a column uses them)` } }],
    lock: "no lock on existing tables", estimate: "seconds (creates the extension's catalog objects)", notes: [], destructive: false,
  };
}

function createTable(text: string, body: Node): Analyzed {
  const rel = relOf(node(body.relation));
  return {
    original: text, rewritten: null,
    ops: [{ sql: text, lock: "NONE", on: null, concurrent: false, expect: { kind: "table", schema: rel.schema, name: rel.name }, inverse: { kind: "drop", sql: `DROP TABLE IF EXISTS ${qn(rel.schema, rel.name)}`, resourceKind: "table", description: `table ${rel.schema}.${rel.name}`, deletes: `the table ${rel.schema}.${rel.name} and every row written to it since` } }],
    lock: "no lock on existing tables", estimate: "milliseconds", notes: [], destructive: false,
  };
}

/**
 * Analyzes DDL with PostgreSQL's parser against the live schema: the lock each statement takes, what it costs at this
 * table's size, the safe form that runs instead, the inverse. Anything it does not know is refused with the reason.
 */
export async function analyze(sql: string, snapshot: SchemaSnapshot): Promise<Analyzed[]> {
  const stmts = await parseStatements(sql);
  const c: Ctx = { snapshot, table: (schema, name) => snapshot.tables.find((t) => t.schema === schema && t.name === name) };
  return stmts.map(({ text, stmt }) => {
    const a = analyzeOne(text, stmt, c);
    // A rewrite that only respells the statement (quoting, spacing) is no rewrite.
    let canonical: string | null = null;
    try {
      canonical = deparseSync(node(stmt) as never, { pretty: false });
    } catch {
      canonical = null;
    }
    return a.rewritten !== null && a.rewritten === canonical ? { ...a, rewritten: null } : a;
  });
}

function analyzeOne(text: string, stmt: unknown, c: Ctx): Analyzed {
  {
    const [kind, body] = unwrap(stmt);
    switch (kind) {
      case "IndexStmt":
        return indexStmt(text, body, c);
      case "AlterTableStmt":
        if (body.objtype !== "OBJECT_TABLE") throw new AgentError("bad-input", `ALTER ${String(body.objtype).replace("OBJECT_", "")} is not a change this agent runs; nothing was changed`);
        return alterTable(text, body, c);
      case "DropStmt":
        return dropStmt(text, body, c);
      case "CreateExtensionStmt":
        return createExtension(text, body, c);
      case "CreateStmt":
        return createTable(text, body);
      case "TransactionStmt":
        throw new AgentError("bad-input", `${text}: the agent runs each statement in its own session (CONCURRENTLY cannot run in a transaction); leave BEGIN/COMMIT out; nothing was changed`);
      case "VariableSetStmt":
        throw new AgentError("bad-input", `${text}: timeouts are the agent's (lock_timeout, statement_timeout per statement, from the deployment's database section); leave SET out; nothing was changed`);
      default:
        throw new AgentError("bad-input", `${text.slice(0, 80)}: ${kind.replace(/Stmt$/, "")} is not a schema change this agent runs (it runs CREATE INDEX, ALTER TABLE ADD/ALTER/DROP COLUMN and constraints, CREATE/DROP EXTENSION, CREATE TABLE, DROP INDEX/TABLE); nothing was changed`);
    }
  }
}

/** The lock level names a gate shows, strongest first. */
export const strongest = (ops: readonly Op[]): LockMode => {
  const order: LockMode[] = ["NONE", "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"];
  return ops.reduce<LockMode>((a, o) => (order.indexOf(o.lock) > order.indexOf(a) ? o.lock : a), "NONE");
};

export type { Expect };

const requireHere = createRequire(import.meta.url);
/** Rules the agent enforces itself (timeouts per session, a catalog check instead of IF NOT EXISTS, no transactions). */
const HANDLED = ["require-timeout-settings", "require-lock-timeout", "require-statement-timeout", "prefer-robust-stmts", "transaction-nesting"];
export const SquawkFinding = (x: unknown): { rule: string; message: string; help: string | null } | null => {
  const n = node(x);
  const rule = str(n.rule_name);
  const message = str(n.message);
  return rule && message ? { rule, message, help: str(n.help) ?? null } : null;
};

/**
 * squawk's binary: the platform package squawk-cli publishes (`@squawk-cli/<platform>-<arch>`), a dependency of
 * its own here because the registry this project installs from carries only the linux-x64 build, and a lock file
 * naming the others cannot be installed with `npm ci`. Elsewhere the lint is refused with the reason.
 */
function squawkBinary(): string {
  const pkg = `@squawk-cli/${process.platform}-${process.arch}`;
  try {
    return requireHere.resolve(`${pkg}/bin/squawk`);
  } catch {
    throw new AgentError("unavailable", `squawk (the migration linter) is not installed for ${process.platform}-${process.arch}: this version ships ${pkg === "@squawk-cli/linux-x64" ? "it, but it is missing: run npm ci" : "its linux-x64 build only"}`);
  }
}

/** squawk's findings for `sql`, minus the rules the agent enforces itself. */
export async function squawk(sql: string, pgVersion = "15"): Promise<{ rule: string; message: string; help: string | null }[]> {
  const bin = squawkBinary();
  const out = await new Promise<string>((resolve, reject) => {
    const child = execFile(bin, ["--reporter", "json", "--stdin-filepath", "change.sql", `--pg-version=${pgVersion}`, `--exclude=${HANDLED.join(",")}`], { timeout: 20_000 }, (err, stdout, stderr) => {
      // squawk exits 1 when it found something: that is an answer, not a failure.
      if (err && (err as { code?: unknown }).code !== 1) reject(new AgentError("failed", `squawk did not run: ${stderr || err.message}`));
      else resolve(stdout);
    });
    child.stdin?.end(sql.endsWith(";") ? sql : `${sql};`);
  });
  const parsed: unknown = out.trim() ? JSON.parse(out) : [];
  return list(parsed).map(SquawkFinding).filter((f): f is NonNullable<typeof f> => f !== null);
}
