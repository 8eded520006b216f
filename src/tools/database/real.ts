import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, statSync, existsSync } from "node:fs";
import { resolve as resolvePath, join } from "node:path";
import pg from "pg";
import { z } from "zod";
import { systemClock, type Clock } from "../../core/clock.js";
import { AgentError } from "../../core/errors.js";
import type { OpLog } from "../../store/oplog.js";
import { settingValue } from "../config/keys.js";
import type { ConfigStore } from "../types.js";
import type { DatabaseSection } from "./section.js";
import {
  ApplyOutcome, BackupResult, Inverse, Op, backoffMs, check, ddlId, describeExpect,
  type ApplyOptions, type DatabaseCapability, type DbStats, type SchemaSnapshot, type SmokeQuery,
} from "./types.js";

/** What the adapter recorded before running an operation: enough for a rollback after a crash to know what it did. */
const Intent = z.object({ op: Op, found: z.enum(["holds", "missing", "invalid"]) });
type Intent = z.infer<typeof Intent>;

const LOCK_TIMEOUT = "55P03";
const codeOf = (e: unknown): string | undefined => (typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "string" ? (e as { code: string }).code : undefined);
const msgOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** The session tag of an operation: a restarted agent finds its own build still running by it. */
export const sessionTag = (key: string): string => `honua-agent ${createHash("sha256").update(key).digest("hex").slice(0, 16)}`;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new AgentError("failed", `${cmd} failed: ${stderr.trim() || err.message}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** Honua's PostgreSQL through `pg`: catalogs for the schema, one session per statement for changes, pg_dump for backups. */
export class PgDatabase implements DatabaseCapability {
  readonly smokeQueries: readonly SmokeQuery[];
  readonly options: DatabaseCapability["options"];
  readonly honuaVersion: string | null;
  private readonly env: NodeJS.ProcessEnv;
  /**
   * The database URL, resolved when first used: a deployment whose `env:` reference is unset can still run its
   * other workflows, and the schema workflow is refused with the reason when it reaches the database.
   */
  private get url(): string {
    const ref = /^env:(.+)$/.exec(this.section.url);
    const url = ref ? this.env[ref[1]!] : this.section.url;
    if (!url) throw new AgentError("bad-input", `deployment ${this.deployment}: database.url names ${this.section.url}, which is not set in the environment`);
    return url;
  }
  private readonly backupDir: string;

  constructor(
    private readonly section: DatabaseSection,
    private readonly log: OpLog,
    private readonly deployment: string,
    env: NodeJS.ProcessEnv,
    cwd: string,
    private readonly config: ConfigStore | null = null,
    private readonly clock: Clock = systemClock,
    private readonly random: () => number = Math.random,
  ) {
    this.env = env;
    this.smokeQueries = section.smokeQueries;
    this.options = { lockTimeoutMs: section.lockTimeoutMs, statementTimeoutMs: section.statementTimeoutMs, retries: section.retries, backup: { mode: section.backup.mode } };
    this.honuaVersion = section.honuaVersion ?? null;
    this.backupDir = resolvePath(cwd, section.backup.dir);
  }

  describe(): string {
    const u = new URL(this.url);
    return `PostgreSQL ${u.hostname}:${u.port || 5432}${u.pathname}`;
  }

  private async withClient<T>(fn: (c: pg.Client) => Promise<T>, appName = "honua-agent"): Promise<T> {
    const c = new pg.Client({ connectionString: this.url, application_name: appName });
    c.on("error", () => undefined);
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  async introspect(): Promise<SchemaSnapshot> {
    return this.withClient(async (c) => {
      const version = (await c.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
      const tables = await c.query<{ oid: number; schema: string; name: string; rows: number; bytes: string }>(
        `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name, GREATEST(c.reltuples, 0)::float8 AS rows, pg_total_relation_size(c.oid)::text AS bytes
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
          ORDER BY 2, 3`);
      const cols = await c.query<{ oid: number; name: string; type: string; notnull: boolean; def: string | null }>(
        `SELECT a.attrelid::int AS oid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull, pg_get_expr(d.adbin, d.adrelid) AS def
           FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attrelid = ANY($1::oid[]) ORDER BY a.attrelid, a.attnum`, [tables.rows.map((t) => t.oid)]);
      const cons = await c.query<{ oid: number; name: string; type: string; def: string; validated: boolean }>(
        `SELECT conrelid::int AS oid, conname AS name, contype::text AS type, pg_get_constraintdef(oid) AS def, convalidated AS validated
           FROM pg_constraint WHERE conrelid = ANY($1::oid[]) ORDER BY conname`, [tables.rows.map((t) => t.oid)]);
      const idx = await c.query<{ schema: string; tbl: string; name: string; def: string; valid: boolean; method: string; columns: string[] }>(
        `SELECT n.nspname AS schema, t.relname AS tbl, i.relname AS name, pg_get_indexdef(x.indexrelid) AS def, x.indisvalid AS valid, am.amname AS method,
                ARRAY(SELECT a.attname::text FROM unnest(x.indkey) WITH ORDINALITY k(attnum, ord) JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum ORDER BY k.ord) AS columns
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = i.relnamespace JOIN pg_am am ON am.oid = i.relam
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 3`);
      const ext = await c.query<{ name: string; version: string }>(`SELECT extname AS name, extversion AS version FROM pg_extension ORDER BY 1`);
      const avail = await c.query<{ name: string }>(`SELECT name FROM pg_available_extensions ORDER BY 1`);
      const long = await c.query<{ pid: number; seconds: number; state: string; query: string }>(
        `SELECT pid, EXTRACT(EPOCH FROM now() - xact_start)::float8 AS seconds, COALESCE(state, '') AS state, left(query, 200) AS query
           FROM pg_stat_activity WHERE xact_start < now() - interval '1 minute' AND pid <> pg_backend_pid() AND datname = current_database() ORDER BY xact_start`);
      return {
        at: this.clock.now().toISOString(),
        serverVersion: version,
        tables: tables.rows.map((t) => ({
          schema: t.schema, name: t.name, rows: Number(t.rows), bytes: Number(t.bytes),
          columns: cols.rows.filter((x) => x.oid === t.oid).map((x) => ({ name: x.name, type: x.type, nullable: !x.notnull, default: x.def })),
          constraints: cons.rows.filter((x) => x.oid === t.oid).map((x) => ({ name: x.name, type: x.type, definition: x.def, validated: x.validated })),
        })),
        indexes: idx.rows.map((i) => ({ schema: i.schema, table: i.tbl, name: i.name, definition: i.def, valid: i.valid, method: i.method, columns: i.columns })),
        extensions: ext.rows,
        availableExtensions: avail.rows.map((r) => r.name),
        longTransactions: long.rows.map((r) => ({ pid: r.pid, seconds: Number(r.seconds.toFixed(1)), state: r.state, query: r.query })),
      };
    });
  }

  /** One statement in its own session: lock_timeout, statement_timeout, and a backend that stops when this process dies. */
  private async session(sql: string, tag: string, o: ApplyOptions): Promise<void> {
    await this.withClient(async (c) => {
      await c.query(`SET lock_timeout = ${Math.round(o.lockTimeoutMs)}`);
      await c.query(`SET statement_timeout = ${Math.round(o.statementTimeoutMs)}`);
      // PostgreSQL 14+: a build whose client is gone is cancelled instead of running on (and leaves an INVALID index the next run repairs).
      await c.query(`SET client_connection_check_interval = 1000`).catch(() => undefined);
      await c.query(sql);
    }, tag);
  }

  /** Waits while a session of this operation from an earlier process is still running (a build that outlived a crash). */
  private async waitForEarlier(tag: string, o: ApplyOptions): Promise<boolean> {
    let waited = false;
    const until = this.clock.now().getTime() + o.statementTimeoutMs;
    for (;;) {
      const busy = await this.withClient(async (c) => (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid() AND state <> 'idle'`, [tag])).rows[0]!.n);
      if (busy === 0) return waited;
      if (this.clock.now().getTime() > until) throw new AgentError("failed", `an earlier session of this change (${tag}) is still running after the statement timeout; cancel it with pg_cancel_backend and retry`);
      if (!waited) o.progress?.(`a session of this change from before a restart is still running (${tag}); waiting for it to end`);
      waited = true;
      await this.clock.sleep(500);
    }
  }

  /** Runs `sql` with bounded retries on lock timeout: a random wait in [0, base * 2^n] between tries. */
  private async withRetries(sql: string, tag: string, o: ApplyOptions, beforeRetry?: () => Promise<void>): Promise<{ ok: boolean; attempts: number; lockTimeouts: number; lastError: string | null }> {
    let lockTimeouts = 0;
    for (let attempt = 0; attempt < o.retries.attempts; attempt++) {
      try {
        await this.session(sql, tag, o);
        return { ok: true, attempts: attempt + 1, lockTimeouts, lastError: null };
      } catch (e) {
        if (codeOf(e) !== LOCK_TIMEOUT) throw new AgentError("failed", `${sql}: ${msgOf(e)}`);
        lockTimeouts++;
        const wait = backoffMs(attempt, o.retries, this.random);
        o.progress?.(`lock not granted within ${o.lockTimeoutMs} ms (attempt ${attempt + 1} of ${o.retries.attempts}); retrying in ${wait} ms`);
        await beforeRetry?.();
        if (attempt + 1 < o.retries.attempts) await this.clock.sleep(wait);
      }
    }
    return { ok: false, attempts: o.retries.attempts, lockTimeouts, lastError: `lock not granted within ${o.lockTimeoutMs} ms, ${o.retries.attempts} times` };
  }

  async apply(op: Op, key: string, o: ApplyOptions): Promise<ApplyOutcome> {
    const prior = this.log.get(this.deployment, "ddl", key, ApplyOutcome);
    if (prior) return prior;
    const started = this.clock.now().getTime();
    const tag = sessionTag(key);
    const waited = await this.waitForEarlier(tag, o);
    const found = check(op.expect, await this.introspect());
    // What was there before this operation first ran: a replay after a crash keeps the first record.
    const recorded = this.log.get(this.deployment, "ddl-intent", key, Intent);
    const intent = recorded ?? { op, found };
    if (!recorded) this.log.put(this.deployment, "ddl-intent", key, intent);
    const finish = (r: ApplyOutcome): ApplyOutcome => {
      if (r.outcome !== "lock-busy") this.log.put(this.deployment, "ddl", key, r);
      return r;
    };
    const ms = () => this.clock.now().getTime() - started;
    if (found === "holds") return finish({ sql: op.sql, outcome: intent.found === "holds" ? "already" : "applied", attempts: 0, lockTimeouts: 0, ms: ms(), note: waited ? "finished by the session that was running before the restart" : `${describeExpect(op.expect)} already` });
    const dropIndex = op.expect.kind === "index" ? `DROP INDEX CONCURRENTLY IF EXISTS ${pg.escapeIdentifier(op.expect.schema)}.${pg.escapeIdentifier(op.expect.name)}` : null;
    let state: "holds" | "missing" | "invalid" = found;
    let lockTimeouts = 0;
    for (let attempt = 0; attempt < o.retries.attempts; attempt++) {
      if (attempt > 0) state = check(op.expect, await this.introspect());
      if (state === "holds") return finish({ sql: op.sql, outcome: found === "invalid" ? "repaired" : "applied", attempts: attempt, lockTimeouts, ms: ms(), note: null });
      try {
        // An INVALID index (an interrupted or timed-out CONCURRENTLY build) is dropped first, then built again.
        if (state === "invalid" && dropIndex) {
          o.progress?.(`${describeExpect(op.expect).replace(" exists and is valid", "")} is INVALID (an interrupted CONCURRENTLY build): dropping it to rebuild`);
          await this.session(dropIndex, tag, o);
        }
        await this.session(op.sql, tag, o);
      } catch (e) {
        if (codeOf(e) !== LOCK_TIMEOUT) throw new AgentError("failed", `${op.sql}: ${msgOf(e)}`);
        lockTimeouts++;
        const wait = backoffMs(attempt, o.retries, this.random);
        o.progress?.(`lock not granted within ${o.lockTimeoutMs} ms (attempt ${attempt + 1} of ${o.retries.attempts})${attempt + 1 < o.retries.attempts ? `; retrying in ${wait} ms` : ""}`);
        if (attempt + 1 < o.retries.attempts) await this.clock.sleep(wait);
        continue;
      }
      const after = check(op.expect, await this.introspect());
      if (after !== "holds") throw new AgentError("failed", `${op.sql} ran, but ${describeExpect(op.expect)} does not hold (${after})`);
      const rebuilt = found === "invalid" || state === "invalid";
      return finish({ sql: op.sql, outcome: rebuilt ? "repaired" : "applied", attempts: attempt + 1, lockTimeouts, ms: ms(), note: rebuilt ? "an INVALID index was dropped and rebuilt" : null });
    }
    const left = check(op.expect, await this.introspect());
    const note = `lock not granted within ${o.lockTimeoutMs} ms, ${o.retries.attempts} times${left === "invalid" ? "; the INVALID index the timed-out build left cannot be dropped while the blocking transaction lasts: the next round (or the rollback's delete gate) drops it" : ""}`;
    return finish({ sql: op.sql, outcome: "lock-busy", attempts: o.retries.attempts, lockTimeouts, ms: ms(), note });
  }

  async backup(key: string): Promise<BackupResult> {
    return this.log.once(this.deployment, "backup", key, BackupResult, async () => {
      mkdirSync(this.backupDir, { recursive: true });
      const mode = this.section.backup.mode;
      const file = join(this.backupDir, `${this.deployment}-${createHash("sha256").update(key).digest("hex").slice(0, 12)}-${mode}.dump`);
      const cfg = this.config ? await this.config.read().catch(() => ({})) : {};
      const honuaCommand = settingValue(cfg, "Database__MigrationSafety__BackupCommand");
      const env = { ...process.env, PGCONNECT_TIMEOUT: "10", HONUA_BACKUP_FILE: file, DATABASE_URL: this.url };
      let command: string;
      if (honuaCommand) {
        // Honua's own backup command, as Honua runs it before its migrations: a non-zero exit aborts the change.
        command = `Database__MigrationSafety__BackupCommand: ${honuaCommand}`;
        await run("/bin/sh", ["-c", honuaCommand], env, this.section.statementTimeoutMs).catch((e: unknown) => {
          throw new AgentError("failed", `Honua's backup command failed, so nothing was changed: ${msgOf(e)}`);
        });
      } else {
        command = `pg_dump -Fc${mode === "schema" ? " --schema-only" : ""} -f ${file}`;
        await run("pg_dump", ["-Fc", ...(mode === "schema" ? ["--schema-only"] : []), "-f", file, "--dbname", this.url], env, this.section.statementTimeoutMs);
      }
      if (!existsSync(file)) throw new AgentError("failed", `the backup wrote no archive at ${file} (a BackupCommand must write $HONUA_BACKUP_FILE so it can be verified); nothing was changed`);
      const list = await run("pg_restore", ["--list", file], env, 120_000);
      const entries = list.stdout.split("\n").filter((l) => l.trim() && !l.startsWith(";")).length;
      if (entries === 0) throw new AgentError("failed", `pg_restore --list read no entry from ${file}: the backup is not usable; nothing was changed`);
      return { location: file, mode, bytes: statSync(file).size, entries, verifiedBy: `pg_restore --list: ${entries} entries`, command };
    });
  }

  async explain(sql: string, o: { preferIndexes?: boolean } = {}): Promise<{ indexes: string[]; plan: string }> {
    return this.withClient(async (c) => {
      await c.query("BEGIN READ ONLY");
      try {
        if (o.preferIndexes) await c.query("SET LOCAL enable_seqscan = off");
        const r = await c.query<{ "QUERY PLAN": unknown }>(`EXPLAIN (FORMAT JSON) ${sql}`);
        const plan = r.rows[0]!["QUERY PLAN"];
        const indexes = new Set<string>();
        const walk = (x: unknown): void => {
          if (Array.isArray(x)) x.forEach(walk);
          else if (typeof x === "object" && x !== null) {
            for (const [k, v] of Object.entries(x)) {
              if (k === "Index Name" && typeof v === "string") indexes.add(v);
              else walk(v);
            }
          }
        };
        walk(plan);
        return { indexes: [...indexes], plan: JSON.stringify(plan) };
      } finally {
        await c.query("ROLLBACK");
      }
    });
  }

  async time(sql: string, runs: number): Promise<number> {
    return this.withClient(async (c) => {
      await c.query("BEGIN READ ONLY");
      try {
        const times: number[] = [];
        for (let i = 0; i < runs; i++) {
          const t0 = performance.now();
          await c.query(sql);
          times.push(performance.now() - t0);
        }
        times.sort((a, b) => a - b);
        return Number(times[Math.floor(times.length / 2)]!.toFixed(3));
      } finally {
        await c.query("ROLLBACK");
      }
    });
  }

  async stats(): Promise<DbStats> {
    const s = await this.withClient(async (c) => {
      const r = await c.query<{ conns: number; waits: number; max: number; lag: number | null }>(
        `SELECT (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') AS conns,
                (SELECT count(*)::int FROM pg_stat_activity WHERE wait_event_type = 'Lock') AS waits,
                current_setting('max_connections')::int AS max,
                (SELECT EXTRACT(EPOCH FROM max(replay_lag))::float8 FROM pg_stat_replication) AS lag`);
      return r.rows[0]!;
    });
    let queryMs: number | null = null;
    if (this.smokeQueries.length) {
      const ts: number[] = [];
      for (const q of this.smokeQueries) ts.push(await this.time(q.sql, 3).catch(() => Number.NaN));
      const ok = ts.filter((t) => Number.isFinite(t));
      queryMs = ok.length ? Number((ok.reduce((a, b) => a + b, 0) / ok.length).toFixed(3)) : null;
    }
    return { at: this.clock.now().toISOString(), queryMs, lockWaits: s.waits, connections: s.conns, maxConnections: s.max, replicationLagSeconds: s.lag };
  }

  private intentOf(id: string): { key: string; intent: Intent } {
    const m = /^ddl:(.+)$/.exec(id);
    const intent = m ? this.log.get(this.deployment, "ddl-intent", m[1]!, Intent) : undefined;
    if (!m || !intent) throw new AgentError("forbidden", `${id} is not a change honua-agent made on ${this.deployment}; refused`);
    return { key: m[1]!, intent };
  }

  async provisioned(key: string): Promise<{ id: string; description: string } | null> {
    const intent = this.log.get(this.deployment, "ddl-intent", key, Intent);
    if (!intent || intent.found === "holds" || intent.op.inverse.kind !== "drop") return null;
    return check(intent.op.expect, await this.introspect()) === "missing" ? null : { id: ddlId(key), description: intent.op.inverse.description };
  }

  async deprovision(id: string, key: string): Promise<void> {
    const { intent } = this.intentOf(id);
    const inv = Inverse.parse(intent.op.inverse);
    if (inv.kind !== "drop") throw new AgentError("forbidden", `${id} has no deletion to run (${inv.kind})`);
    if (intent.found === "holds") return; // it was there before this run: never deleted by it
    await this.log.once(this.deployment, "ddl-undo", key, z.null(), async () => {
      const r = await this.withRetries(inv.sql, sessionTag(key), { ...this.options, progress: undefined });
      if (!r.ok) throw new AgentError("failed", `${inv.sql}: ${r.lastError}; run it by hand when the table is quieter`);
      return null;
    });
  }

  async restore(target: string, value: string, key: string): Promise<void> {
    const { intent } = this.intentOf(target);
    const inv = intent.op.inverse;
    if (inv.kind !== "restore" || inv.sql !== value) throw new AgentError("forbidden", `${target}: the restore asked for is not the one recorded for it; refused`);
    // Nothing to undo where the change was already there, or never happened.
    if (intent.found === "holds") return;
    const now = check(intent.op.expect, await this.introspect());
    if (now === "missing") return;
    await this.log.once(this.deployment, "ddl-undo", key, z.null(), async () => {
      const r = await this.withRetries(inv.sql, sessionTag(key), { ...this.options, progress: undefined });
      if (!r.ok) throw new AgentError("failed", `${inv.sql}: ${r.lastError}`);
      return null;
    });
  }
}
