import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { z } from "zod";
import { statementCache, type SqliteSynchronous } from "./sql.js";

/**
 * The idempotency journal of the real adapters: one row per (deployment, operation, idempotency key),
 * written after the side effect succeeded. A replayed call with the same key returns the recorded result
 * instead of acting again. It lives next to the checkpoints (`$HONUA_AGENT_HOME/real-adapters.sqlite`)
 * and never holds a secret value: results are references, hashes and counts.
 */
export class OpLog {
  private readonly db: Database.Database;
  private readonly prepared: (sql: string) => Database.Statement;

  /** `synchronous` as in sqliteSql: FULL, so a recorded side effect survives a power loss and is not done again. */
  constructor(path: string, opts: { synchronous?: SqliteSynchronous } = {}) {
    mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("busy_timeout = 10000");
    this.db.pragma(`synchronous = ${opts.synchronous ?? "FULL"}`);
    this.db.exec(`CREATE TABLE IF NOT EXISTS real_ops (
      deployment TEXT NOT NULL, op TEXT NOT NULL, key TEXT NOT NULL, result TEXT NOT NULL, at TEXT NOT NULL,
      PRIMARY KEY (deployment, op, key))`);
    this.prepared = statementCache(this.db);
  }

  get<T>(deployment: string, op: string, key: string, schema: z.ZodType<T>): T | undefined {
    const row = this.prepared(`SELECT result FROM real_ops WHERE deployment = ? AND op = ? AND key = ?`).get(deployment, op, key) as { result: string } | undefined;
    return row ? schema.parse(JSON.parse(row.result)) : undefined;
  }

  put(deployment: string, op: string, key: string, result: unknown): void {
    this.prepared(`INSERT INTO real_ops (deployment, op, key, result, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
      .run(deployment, op, key, JSON.stringify(result ?? null), new Date().toISOString());
  }

  /** Every recorded result of one operation, oldest first (e.g. what was adopted, to release it later). */
  all<T>(deployment: string, op: string, schema: z.ZodType<T>): { key: string; result: T }[] {
    const rows = this.prepared(`SELECT key, result FROM real_ops WHERE deployment = ? AND op = ? ORDER BY at, rowid`).all(deployment, op) as { key: string; result: string }[];
    return rows.map((r) => ({ key: r.key, result: schema.parse(JSON.parse(r.result)) }));
  }

  /** The recorded results of several operations in the order they were recorded (e.g. adoptions and releases). */
  history(deployment: string, ops: string[]): { op: string; key: string; result: unknown }[] {
    const rows = this.prepared(`SELECT op, key, result FROM real_ops WHERE deployment = ? AND op IN (${ops.map(() => "?").join(", ")}) ORDER BY rowid`).all(deployment, ...ops) as { op: string; key: string; result: string }[];
    return rows.map((r) => ({ op: r.op, key: r.key, result: JSON.parse(r.result) as unknown }));
  }

  /**
   * Runs `fn` unless this key already ran. Not a transaction (the side effect is remote): a crash between the
   * effect and the record replays `fn`, so every `fn` here must itself tolerate running twice.
   */
  async once<T>(deployment: string, op: string, key: string, schema: z.ZodType<T>, fn: () => Promise<T>): Promise<T> {
    const prior = this.get(deployment, op, key, schema);
    if (prior !== undefined) return prior;
    const result = await fn();
    this.put(deployment, op, key, result);
    return result;
  }

  /** The connection's `PRAGMA synchronous` (2: FULL), for doctor and tests. */
  synchronous(): number {
    return Number(this.db.pragma("synchronous", { simple: true }));
  }

  close(): void {
    this.db.close();
  }
}
