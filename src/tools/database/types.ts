import { z } from "zod";

/** PostgreSQL's table lock modes, weakest first (the lock a statement takes on the table it changes). */
export const LockMode = z.enum(["NONE", "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"]);
export type LockMode = z.infer<typeof LockMode>;

export const IndexInfo = z.object({ schema: z.string(), table: z.string(), name: z.string(), definition: z.string(), valid: z.boolean(), method: z.string(), columns: z.array(z.string()) });
export const ColumnInfo = z.object({ name: z.string(), type: z.string(), nullable: z.boolean(), default: z.string().nullable() });
export const ConstraintInfo = z.object({ name: z.string(), type: z.string(), definition: z.string(), validated: z.boolean() });
export const TableInfo = z.object({
  schema: z.string(),
  name: z.string(),
  /** pg_class.reltuples (an estimate; -1 before the first ANALYZE is reported as 0). */
  rows: z.number().nonnegative(),
  bytes: z.number().int().nonnegative(),
  columns: z.array(ColumnInfo),
  constraints: z.array(ConstraintInfo),
});
export type TableInfo = z.infer<typeof TableInfo>;
export type IndexInfo = z.infer<typeof IndexInfo>;

/** The live schema, read from the catalogs. */
export const SchemaSnapshot = z.object({
  at: z.string(),
  serverVersion: z.string(),
  tables: z.array(TableInfo),
  indexes: z.array(IndexInfo),
  extensions: z.array(z.object({ name: z.string(), version: z.string() })),
  availableExtensions: z.array(z.string()),
  /** Transactions open longer than a minute: a CONCURRENTLY build waits for each of them to end. */
  longTransactions: z.array(z.object({ pid: z.number().int(), seconds: z.number(), state: z.string(), query: z.string() })),
});
export type SchemaSnapshot = z.infer<typeof SchemaSnapshot>;

/** What must be true after an operation; checked before running it too, so a replay does nothing twice. */
export const Expect = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("index"), schema: z.string(), table: z.string(), name: z.string() }),
  z.object({ kind: z.literal("no-index"), schema: z.string(), name: z.string() }),
  z.object({ kind: z.literal("column"), schema: z.string(), table: z.string(), column: z.string(), notNull: z.boolean().optional(), default: z.string().nullable().optional() }),
  z.object({ kind: z.literal("no-column"), schema: z.string(), table: z.string(), column: z.string() }),
  z.object({ kind: z.literal("constraint"), schema: z.string(), table: z.string(), name: z.string(), validated: z.boolean() }),
  z.object({ kind: z.literal("no-constraint"), schema: z.string(), table: z.string(), name: z.string() }),
  z.object({ kind: z.literal("extension"), name: z.string() }),
  z.object({ kind: z.literal("no-extension"), name: z.string() }),
  z.object({ kind: z.literal("table"), schema: z.string(), name: z.string() }),
  z.object({ kind: z.literal("no-table"), schema: z.string(), name: z.string() }),
]);
export type Expect = z.infer<typeof Expect>;

/** How an applied operation is undone: a deletion (behind the delete gate), a restore, or nothing possible. */
export const Inverse = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("drop"), sql: z.string(), resourceKind: z.string(), description: z.string(), deletes: z.string() }),
  z.object({ kind: z.literal("restore"), sql: z.string(), description: z.string() }),
  z.object({ kind: z.literal("impossible"), why: z.string() }),
]);
export type Inverse = z.infer<typeof Inverse>;

/** One statement as it runs: its own session, lock_timeout, outside a transaction when CONCURRENTLY. */
export const Op = z.object({
  sql: z.string(),
  lock: LockMode,
  /** The table whose lock it takes (schema.table), or null. */
  on: z.string().nullable(),
  /** CREATE/DROP INDEX CONCURRENTLY: cannot run inside a transaction block. */
  concurrent: z.boolean(),
  expect: Expect,
  inverse: Inverse,
});
export type Op = z.infer<typeof Op>;

export const ApplyOutcome = z.object({
  sql: z.string(),
  /** applied: ran now; already: its expectation held before it ran (a replay, or done by someone); repaired: an INVALID index was dropped and rebuilt. */
  outcome: z.enum(["applied", "already", "repaired", "lock-busy"]),
  attempts: z.number().int().min(0),
  /** Lock timeouts met before it ran (or gave up). */
  lockTimeouts: z.number().int().min(0),
  ms: z.number().nonnegative(),
  note: z.string().nullable(),
});
export type ApplyOutcome = z.infer<typeof ApplyOutcome>;

export const BackupResult = z.object({
  location: z.string(),
  mode: z.enum(["schema", "full"]),
  bytes: z.number().int().nonnegative(),
  /** Entries `pg_restore --list` read back from the archive: a backup that does not list is no backup. */
  entries: z.number().int().nonnegative(),
  verifiedBy: z.string(),
  command: z.string(),
});
export type BackupResult = z.infer<typeof BackupResult>;

export const DbStats = z.object({
  at: z.string(),
  /** Mean time of the smoke queries just now, in ms; null with none configured or none answered. */
  queryMs: z.number().nullable(),
  /** Sessions waiting on a lock right now. */
  lockWaits: z.number().int().nullable(),
  connections: z.number().int().nullable(),
  maxConnections: z.number().int().nullable(),
  /** Seconds the slowest replica is behind; null without a replica. */
  replicationLagSeconds: z.number().nullable(),
});
export type DbStats = z.infer<typeof DbStats>;

export const SmokeQuery = z.object({
  name: z.string().min(1),
  sql: z.string().min(1),
  /** An index the plan must use once the change is in (EXPLAIN). */
  expectIndex: z.string().optional(),
});
export type SmokeQuery = z.infer<typeof SmokeQuery>;

export interface ApplyOptions {
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  retries: { attempts: number; baseMs: number; maxMs: number };
  progress?: (message: string) => void;
}

/** The `database` capability: Honua's PostgreSQL/PostGIS, read from its catalogs and changed one lock-safe statement at a time. */
export interface DatabaseCapability {
  describe(): string;
  readonly smokeQueries: readonly SmokeQuery[];
  readonly options: ApplyOptions & { backup: { mode: "schema" | "full" } };
  /** A Honua version the change needs, when the deployment names one. */
  readonly honuaVersion: string | null;
  introspect(): Promise<SchemaSnapshot>;
  /**
   * Runs one operation in its own session with lock_timeout and statement_timeout, retrying lock timeouts with
   * exponential backoff and full jitter; `lock-busy` when the retries ran out (nothing changed). Idempotent per key and
   * by the catalogs: a valid index is kept, an INVALID one is dropped and rebuilt.
   */
  apply(op: Op, idempotencyKey: string, o: ApplyOptions): Promise<ApplyOutcome>;
  backup(idempotencyKey: string): Promise<BackupResult>;
  /** The plan of `sql` (EXPLAIN, never ANALYZE): the indexes it uses. */
  explain(sql: string, o?: { preferIndexes?: boolean }): Promise<{ indexes: string[]; plan: string }>;
  /** Median run time of `sql` over `runs` runs, in ms (read-only queries only). */
  time(sql: string, runs: number): Promise<number>;
  stats(): Promise<DbStats>;
  /** What an apply under this key created, even if it did not return (a rollback's question after a crash). */
  provisioned(idempotencyKey: string): Promise<{ id: string; description: string } | null>;
  /** Runs the inverse that the apply under `ddl:<key>` recorded (a DROP, behind the delete gate); refuses anything else. */
  deprovision(id: string, idempotencyKey: string): Promise<void>;
  /** A rollback runs the restoring inverse recorded for `ddl:<key>` (nothing when that apply never ran). */
  restore(target: string, value: string, idempotencyKey: string): Promise<void>;
}

declare module "../types.js" {
  interface DeploymentAdapters {
    database?: DatabaseCapability;
  }
}

/** Where the adapter records each applied operation: the id a rollback or delete gate names it by. */
export const ddlId = (idempotencyKey: string): string => `ddl:${idempotencyKey}`;

/** Full-jitter exponential backoff: a random wait in [0, min(max, base * 2^attempt)]. */
export function backoffMs(attempt: number, r: { baseMs: number; maxMs: number }, random: () => number = Math.random): number {
  return Math.round(random() * Math.min(r.maxMs, r.baseMs * 2 ** attempt));
}

const qname = (schema: string, name: string) => `${schema}.${name}`;

/** Whether `e` holds in `s`; for an index, `invalid` when it exists but is INVALID (a failed or running CONCURRENTLY build). */
export function check(e: Expect, s: SchemaSnapshot): "holds" | "missing" | "invalid" {
  const table = (schema: string, name: string) => s.tables.find((t) => t.schema === schema && t.name === name);
  switch (e.kind) {
    case "index": {
      const i = s.indexes.find((x) => x.schema === e.schema && x.name === e.name);
      return !i ? "missing" : i.valid ? "holds" : "invalid";
    }
    case "no-index":
      return s.indexes.some((x) => x.schema === e.schema && x.name === e.name) ? "missing" : "holds";
    case "column": {
      const c = table(e.schema, e.table)?.columns.find((x) => x.name === e.column);
      if (!c) return "missing";
      if (e.notNull !== undefined && c.nullable === e.notNull) return "missing";
      if (e.default !== undefined && (c.default ?? null) !== (e.default ?? null)) return "missing";
      return "holds";
    }
    case "no-column":
      return table(e.schema, e.table)?.columns.some((x) => x.name === e.column) ? "missing" : "holds";
    case "constraint": {
      const c = table(e.schema, e.table)?.constraints.find((x) => x.name === e.name);
      return !c ? "missing" : e.validated && !c.validated ? "missing" : "holds";
    }
    case "no-constraint":
      return table(e.schema, e.table)?.constraints.some((x) => x.name === e.name) ? "missing" : "holds";
    case "extension":
      return s.extensions.some((x) => x.name === e.name) ? "holds" : "missing";
    case "no-extension":
      return s.extensions.some((x) => x.name === e.name) ? "missing" : "holds";
    case "table":
      return table(e.schema, e.name) ? "holds" : "missing";
    case "no-table":
      return table(e.schema, e.name) ? "missing" : "holds";
  }
}

export const describeExpect = (e: Expect): string => {
  switch (e.kind) {
    case "index": return `index ${qname(e.schema, e.name)} on ${e.table} exists and is valid`;
    case "no-index": return `index ${qname(e.schema, e.name)} is gone`;
    case "column": return `column ${qname(e.schema, e.table)}.${e.column} exists${e.notNull ? " NOT NULL" : ""}${e.default !== undefined ? ` with default ${e.default ?? "none"}` : ""}`;
    case "no-column": return `column ${qname(e.schema, e.table)}.${e.column} is gone`;
    case "constraint": return `constraint ${e.name} on ${qname(e.schema, e.table)} exists${e.validated ? " and is validated" : ""}`;
    case "no-constraint": return `constraint ${e.name} on ${qname(e.schema, e.table)} is gone`;
    case "extension": return `extension ${e.name} is installed`;
    case "no-extension": return `extension ${e.name} is not installed`;
    case "table": return `table ${qname(e.schema, e.name)} exists`;
    case "no-table": return `table ${qname(e.schema, e.name)} is gone`;
  }
};
