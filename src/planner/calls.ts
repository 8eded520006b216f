import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { Sql } from "../store/store.js";

/** One model call as the transcript records it: which model, which prompt version, what it cost, how it ended. */
export const ModelCallRecord = z.object({
  id: z.string(),
  /** The run this call belongs to; null for a plan that never became a run (clarify, refuse, `plan`). */
  run: z.string().nullable(),
  task: z.enum(["plan", "converse"]),
  model: z.string(),
  promptVersion: z.string(),
  inputTokens: z.number().int().nullable(),
  outputTokens: z.number().int().nullable(),
  totalTokens: z.number().int().nullable(),
  latencyMs: z.number().int(),
  /** ok: used; invalid: did not validate; timeout/error: no answer. Anything but ok fell back to the rules. */
  outcome: z.enum(["ok", "invalid", "timeout", "error"]),
  detail: z.string().nullable(),
  at: z.string(),
});
export type ModelCallRecord = z.infer<typeof ModelCallRecord>;

export const newCallId = (): string => `mc-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;

/** Where model-call records go. Planning has no run yet: `attach` links its calls once the run exists. */
export interface ModelCallSink {
  record(rec: ModelCallRecord): Promise<void>;
  attach(ids: readonly string[], run: string): Promise<void>;
}

/** Keeps records in memory: evals, benchmarks and callers without a store. */
export class MemoryCallSink implements ModelCallSink {
  readonly records: ModelCallRecord[] = [];
  async record(rec: ModelCallRecord): Promise<void> {
    this.records.push(ModelCallRecord.parse(rec));
  }
  async attach(ids: readonly string[], run: string): Promise<void> {
    for (const r of this.records) if (ids.includes(r.id)) r.run = run;
  }
}

const TABLE = `CREATE TABLE IF NOT EXISTS honua_model_calls (
  id TEXT PRIMARY KEY, run TEXT, task TEXT NOT NULL, model TEXT NOT NULL, prompt_version TEXT NOT NULL,
  input_tokens INTEGER, output_tokens INTEGER, total_tokens INTEGER, latency_ms INTEGER NOT NULL,
  outcome TEXT NOT NULL, detail TEXT, at TEXT NOT NULL)`;

const created = new WeakMap<Sql, Map<string, Promise<void>>>();

/**
 * Creates tables once per connection, in one transaction under the store's cross-process lock: a crash leaves all
 * of them or none (a table without its index), and on PostgreSQL concurrent CREATE TABLE IF NOT EXISTS from several
 * replicas, which can fail (duplicate pg_type row), wait for each other.
 */
export function ensureTables(sql: Sql, statements: readonly string[]): Promise<void> {
  const key = statements.join(";");
  let bySql = created.get(sql);
  if (!bySql) created.set(sql, (bySql = new Map()));
  let done = bySql.get(key);
  if (!done) {
    const run = async () => {
      for (const stmt of statements) await sql.query(stmt);
    };
    done = sql.exclusive("honua-agent-model-tables", run).catch((e: unknown) => {
      bySql.delete(key);
      throw e;
    });
    bySql.set(key, done);
  }
  return done;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/**
 * Model calls in the agent's own database (SQLite or PostgreSQL, through the store's SQL seam), next to runs
 * and decisions, so a run's transcript can list every call made for it.
 */
export class SqlCallLog implements ModelCallSink {
  private constructor(private readonly sql: Sql) {}

  static async open(sql: Sql): Promise<SqlCallLog> {
    await ensureTables(sql, [TABLE, `CREATE INDEX IF NOT EXISTS honua_model_calls_run ON honua_model_calls (run)`]);
    return new SqlCallLog(sql);
  }

  async record(rec: ModelCallRecord): Promise<void> {
    const r = ModelCallRecord.parse(rec);
    await this.sql.query(
      `INSERT INTO honua_model_calls (id, run, task, model, prompt_version, input_tokens, output_tokens, total_tokens, latency_ms, outcome, detail, at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      [r.id, r.run, r.task, r.model, r.promptVersion, r.inputTokens, r.outputTokens, r.totalTokens, r.latencyMs, r.outcome, r.detail, r.at],
    );
  }

  async attach(ids: readonly string[], run: string): Promise<void> {
    for (const id of ids) await this.sql.query(`UPDATE honua_model_calls SET run = ? WHERE id = ? AND run IS NULL`, [run, id]);
  }

  async forRun(run: string): Promise<ModelCallRecord[]> {
    const rows = await this.sql.query(`SELECT * FROM honua_model_calls WHERE run = ? ORDER BY at, id`, [run]);
    return rows.map((r) =>
      ModelCallRecord.parse({
        id: r.id, run: r.run ?? null, task: r.task, model: r.model, promptVersion: r.prompt_version,
        inputTokens: num(r.input_tokens), outputTokens: num(r.output_tokens), totalTokens: num(r.total_tokens),
        latencyMs: Number(r.latency_ms), outcome: r.outcome, detail: r.detail ?? null, at: String(r.at),
      }),
    );
  }
}
