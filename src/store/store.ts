import { randomUUID } from "node:crypto";
import { z } from "zod";
import { AgentError } from "../core/errors.js";
import { Effect, JournalEntry } from "../core/journal.js";
import { DecisionKind } from "../core/gates.js";
import { DecisionRecord, RunStatus } from "../core/records.js";
import { UNASSIGNED, appendRecord, auditLock, baselineAudit, deploymentOfRun } from "./audit.js";
import type { Sql } from "./sql.js";

export const RunRow = z.object({
  run: z.string(),
  workflow: z.string(),
  deployment: z.string(),
  status: RunStatus,
  requestedBy: z.string(),
  startedAt: z.string(),
  updatedAt: z.string(),
  request: z.string(),
  /** The plan's params as validated when the run was started (null for runs recorded by an earlier version). */
  params: z.record(z.string(), z.unknown()).nullable(),
  /** Who drove the run when the row was read (null: no one), and when that claim was last renewed. */
  owner: z.string().nullable(),
  claimedAt: z.string().nullable(),
});
export type RunRow = z.infer<typeof RunRow>;

/**
 * A decision as stored: the row keyed by (run, interrupt) that only one click can create. `groups` are the
 * external groups (e.g. Slack user groups) the decider was verified to belong to when deciding.
 */
export type StoredDecision = DecisionRecord & { run: string; groups: string[] };

/** A request to pause, cancel or roll back a run, acted on at the next step boundary; open until resolved. */
export const Control = z.object({
  run: z.string(),
  id: z.string(),
  kind: z.enum(["pause", "cancel", "rollback", "rollback-request"]),
  by: z.string(),
  reason: z.string(),
  at: z.string(),
  resolvedAt: z.string().nullable(),
});
export type Control = z.infer<typeof Control>;

/** When a gate was first shown (wall clock), when it expires, and which notices were sent. */
export const GateTicket = z.object({
  run: z.string(),
  interrupt: z.string(),
  step: z.string(),
  kind: z.string(),
  planHash: z.string(),
  askedAt: z.string(),
  expiresAt: z.string().nullable(),
  warnedAt: z.string().nullable(),
  expiredAt: z.string().nullable(),
  closedAt: z.string().nullable(),
});
export type GateTicket = z.infer<typeof GateTicket>;

export type { Sql };

const RECORDS_TABLE = `CREATE TABLE IF NOT EXISTS honua_records (
     run TEXT NOT NULL, list TEXT NOT NULL, seq INTEGER NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (run, list, seq))`;
const UPSERT_RECORD = `INSERT INTO honua_records (run, list, seq, name, body) VALUES (?, ?, ?, ?, ?) ON CONFLICT (run, list, seq) DO UPDATE SET name = excluded.name, body = excluded.body`;

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS honua_runs (
     run TEXT PRIMARY KEY, workflow TEXT NOT NULL, deployment TEXT NOT NULL, status TEXT NOT NULL,
     requested_by TEXT NOT NULL, started_at TEXT NOT NULL, updated_at TEXT NOT NULL, request TEXT NOT NULL,
     owner TEXT, claimed_at TEXT, params TEXT)`,
  `CREATE TABLE IF NOT EXISTS honua_locks (
     deployment TEXT PRIMARY KEY, run TEXT NOT NULL, acquired_at TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS honua_decisions (
     run TEXT NOT NULL, interrupt TEXT NOT NULL, step TEXT NOT NULL, stage INTEGER, kind TEXT NOT NULL,
     decision TEXT NOT NULL, by_user TEXT NOT NULL, at TEXT NOT NULL, plan_hash TEXT NOT NULL, comment TEXT,
     member_of TEXT NOT NULL DEFAULT '[]', wall_at TEXT, PRIMARY KEY (run, interrupt))`,
  `CREATE TABLE IF NOT EXISTS honua_controls (
     run TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, by_user TEXT NOT NULL, reason TEXT NOT NULL,
     at TEXT NOT NULL, resolved_at TEXT, PRIMARY KEY (run, id))`,
  `CREATE TABLE IF NOT EXISTS honua_evidence (
     run TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (run, key))`,
  RECORDS_TABLE,
  `CREATE TABLE IF NOT EXISTS honua_memo (
     run TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run, key))`,
  `CREATE TABLE IF NOT EXISTS honua_gates (
     run TEXT NOT NULL, interrupt TEXT NOT NULL, step TEXT NOT NULL, kind TEXT NOT NULL, plan_hash TEXT NOT NULL,
     asked_at TEXT NOT NULL, expires_at TEXT, warned_at TEXT, expired_at TEXT, closed_at TEXT,
     PRIMARY KEY (run, interrupt))`,
  `CREATE TABLE IF NOT EXISTS honua_operator_actions (
     at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, deployment TEXT, run TEXT, detail TEXT NOT NULL, id TEXT)`,
  `CREATE TABLE IF NOT EXISTS honua_cursors (
     run TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (run, key))`,
  `CREATE TABLE IF NOT EXISTS honua_journal (
     run TEXT NOT NULL, key TEXT NOT NULL, step TEXT NOT NULL, stage INTEGER, seq INTEGER NOT NULL,
     effects TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, at TEXT NOT NULL, PRIMARY KEY (run, key))`,
  // The tamper-evident chain (src/store/audit.ts): per deployment, seq 1..n, each entry hashed with the one before.
  `CREATE TABLE IF NOT EXISTS honua_audit (
     deployment TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL, at TEXT NOT NULL,
     body TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (deployment, seq))`,
];

const TABLES = SCHEMA.map((stmt) => /CREATE TABLE IF NOT EXISTS (\w+)/.exec(stmt)![1]!);

const nullableStr = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function toControl(r: Row): Control {
  return Control.parse({ run: r.run, id: r.id, kind: r.kind, by: r.by_user, reason: r.reason, at: str(r.at), resolvedAt: nullableStr(r.resolved_at) });
}

function toTicket(r: Row): GateTicket {
  return {
    run: str(r.run), interrupt: str(r.interrupt), step: str(r.step), kind: str(r.kind), planHash: str(r.plan_hash), askedAt: str(r.asked_at),
    expiresAt: nullableStr(r.expires_at), warnedAt: nullableStr(r.warned_at), expiredAt: nullableStr(r.expired_at), closedAt: nullableStr(r.closed_at),
  };
}

/** Columns added after a table was first created: added in place to databases made by an earlier version. */
const ADDED_COLUMNS: { table: string; column: string; ddl: string }[] = [
  { table: "honua_runs", column: "claimed_at", ddl: "claimed_at TEXT" },
  { table: "honua_decisions", column: "member_of", ddl: "member_of TEXT NOT NULL DEFAULT '[]'" },
  { table: "honua_decisions", column: "wall_at", ddl: "wall_at TEXT" },
  { table: "honua_runs", column: "params", ddl: "params TEXT" },
  { table: "honua_operator_actions", column: "id", ddl: "id TEXT" },
];

type Row = Record<string, unknown>;
const str = (v: unknown): string => String(v);

/*
 * Rows this store wrote are mapped back without a zod parse (they are read on every decision and step): only the
 * columns whose type the database does not hold for us (an enum kept as text, JSON kept as text) are checked, and a
 * row that fails names its table and column.
 */
const RUN_STATUSES: ReadonlySet<string> = new Set(RunStatus.options);
const DECISION_KINDS: ReadonlySet<string> = new Set(DecisionKind.options);
const DECISIONS: ReadonlySet<string> = new Set(DecisionRecord.shape.decision.options);

function member<T extends string>(set: ReadonlySet<string>, v: unknown, what: string): T {
  if (typeof v === "string" && set.has(v)) return v as T;
  throw new Error(`the store holds an unexpected ${what}: ${JSON.stringify(v)}`);
}

const nullableNum = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function toRun(r: Row): RunRow {
  const params: unknown = r.params === null || r.params === undefined ? null : JSON.parse(str(r.params));
  if (params !== null && (typeof params !== "object" || Array.isArray(params))) throw new Error(`the store holds unexpected params for run ${str(r.run)}`);
  return {
    run: str(r.run), workflow: str(r.workflow), deployment: str(r.deployment), status: member(RUN_STATUSES, r.status, "honua_runs.status"),
    requestedBy: str(r.requested_by), startedAt: str(r.started_at), updatedAt: str(r.updated_at), request: str(r.request),
    params: params as Record<string, unknown> | null,
    owner: nullableStr(r.owner), claimedAt: nullableStr(r.claimed_at),
  };
}

function toDecision(r: Row): StoredDecision {
  const groups: unknown = JSON.parse(str(r.member_of ?? "[]"));
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === "string")) throw new Error(`the store holds unexpected groups for a decision of run ${str(r.run)}`);
  return {
    run: str(r.run), step: str(r.step), stage: nullableNum(r.stage), kind: member(DECISION_KINDS, r.kind, "honua_decisions.kind"),
    decision: member(DECISIONS, r.decision, "honua_decisions.decision"), by: str(r.by_user), at: str(r.at), planHash: str(r.plan_hash),
    interrupt: str(r.interrupt), comment: nullableStr(r.comment),
    ...(r.wall_at === null || r.wall_at === undefined ? {} : { wallAt: str(r.wall_at) }),
    groups: groups as string[],
  };
}

function toJournal(r: Row): JournalEntry {
  return JournalEntry.parse({
    key: r.key, step: r.step, stage: r.stage === null || r.stage === undefined ? null : Number(r.stage), seq: Number(r.seq),
    effects: z.array(Effect).parse(JSON.parse(str(r.effects))), done: Number(r.done) === 1, at: str(r.at),
  });
}

/** The lists of a run's transcript kept beside its checkpoints. */
export type RecordList = "steps" | "decisions";

/** Runs, per-deployment locks and decisions: the records that must be atomic across processes. */
export class AgentStore {
  /**
   * `records` is where the step and decision records live (`putRecord`): by default the same database. On SQLite they
   * are kept in the checkpoints' own file, at the checkpoints' durability: a record is committed before the checkpoint
   * that counts it, into the same write-ahead log, so any checkpoint that survives a power cut has its records, and a
   * step costs no fsync of its own. Decisions, controls and the journal stay in `sql`, committed with fsync.
   *
   * `light` is `sql`'s own file on a second connection that commits without an fsync (SQLite's NORMAL; the same pool on
   * PostgreSQL), for bookkeeping a power cut may take back without harm: who drives a run (a claim names a process
   * that the power cut ended too, and the next decision's commit makes it durable anyway) and the Slack front's
   * deliveries seen (a click delivered again after a power cut meets the decision record, which is durable).
   */
  readonly recordsSql: Sql;
  readonly lightSql: Sql;
  /** Whether `records` is another database (SQLite: the checkpoints' file), whose records an older store kept in `sql`. */
  private readonly recordsApart: boolean;

  constructor(
    readonly sql: Sql,
    opts: { records?: Sql; recordsInOwnDatabase?: boolean; light?: Sql } = {},
  ) {
    this.recordsSql = opts.records ?? sql;
    this.lightSql = opts.light ?? sql;
    this.recordsApart = this.recordsSql !== sql && (opts.recordsInOwnDatabase ?? false);
  }

  /**
   * Creates or brings up to date every table, in one transaction: a crash in the middle leaves nothing half built.
   * An up-to-date store (the usual case) is only read, so opening it takes no write lock.
   */
  async setup(): Promise<void> {
    const complete = (cols: Map<string, string[]>) =>
      TABLES.every((t) => (cols.get(t) ?? []).length > 0) && ADDED_COLUMNS.every((c) => (cols.get(c.table) ?? []).includes(c.column));
    if (this.recordsApart) await this.setupRecords();
    if (complete(await this.columns())) return;
    await this.sql.exclusive("honua-agent-setup", async () => {
      const chained = ((await this.columns()).get("honua_audit") ?? []).length > 0;
      for (const stmt of SCHEMA) await this.sql.query(stmt);
      const cols = await this.columns();
      for (const c of ADDED_COLUMNS) if (!(cols.get(c.table) ?? []).includes(c.column)) await this.sql.query(`ALTER TABLE ${c.table} ADD COLUMN ${c.ddl}`);
      // The chain starts here: what the store already holds is named by a baseline entry, never given invented entries.
      if (!chained) await baselineAudit(this.sql);
    });
  }

  /**
   * The records' own database: its table, and the records an older store kept in the main database moved into it (in
   * batches, each copied before it is deleted, so a crash in the middle loses none and a second open finishes the move).
   */
  private async setupRecords(): Promise<void> {
    await this.recordsSql.query(RECORDS_TABLE);
    const legacy = this.sql.dialect === "sqlite" ? (await this.sql.query(`PRAGMA table_info(honua_records)`)).length > 0 : true;
    if (!legacy) return;
    for (;;) {
      const rows = await this.sql.query(`SELECT run, list, seq, name, body FROM honua_records ORDER BY run, list, seq LIMIT 500`);
      if (!rows.length) return;
      await this.recordsSql.exclusive("honua-agent-records", async () => {
        for (const r of rows) await this.recordsSql.query(UPSERT_RECORD, [r.run, r.list, r.seq, r.name, r.body]);
      });
      await this.sql.exclusive("honua-agent-records", async () => {
        for (const r of rows) await this.sql.query(`DELETE FROM honua_records WHERE run = ? AND list = ? AND seq = ?`, [r.run, r.list, r.seq]);
      });
    }
  }

  /** The columns of each of the store's tables (none for a table that does not exist). */
  private async columns(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (this.sql.dialect === "sqlite") {
      for (const t of TABLES) out.set(t, (await this.sql.query(`PRAGMA table_info(${t})`)).map((r) => str(r.name)));
      return out;
    }
    const rows = await this.sql.query(`SELECT table_name AS t, column_name AS name FROM information_schema.columns WHERE table_name IN (${TABLES.map(() => "?").join(", ")})`, TABLES);
    for (const r of rows) out.set(str(r.t), [...(out.get(str(r.t)) ?? []), str(r.name)]);
    return out;
  }

  /**
   * Records a run. With `params` it can be started again from its beginning if the process dies before its first
   * checkpoint; with `owner` it is claimed by that driver from the first moment, so no one else starts it meanwhile.
   */
  async createRun(row: Omit<RunRow, "updatedAt" | "params" | "owner" | "claimedAt"> & { params?: Record<string, unknown>; owner?: string }): Promise<void> {
    await this.sql.query(
      `INSERT INTO honua_runs (run, workflow, deployment, status, requested_by, started_at, updated_at, request, params, owner, claimed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        row.run, row.workflow, row.deployment, row.status, row.requestedBy, row.startedAt, row.startedAt, row.request,
        row.params === undefined ? null : JSON.stringify(row.params), row.owner ?? null, row.owner ? row.startedAt : null,
      ],
    );
  }

  async setStatus(run: string, status: RunStatus, at: string): Promise<void> {
    await this.sql.query(`UPDATE honua_runs SET status = ?, updated_at = ? WHERE run = ?`, [status, at, run]);
  }

  async getRun(run: string): Promise<RunRow | undefined> {
    const rows = await this.sql.query(`SELECT * FROM honua_runs WHERE run = ?`, [run]);
    return rows[0] ? toRun(rows[0]) : undefined;
  }

  async listRuns(): Promise<RunRow[]> {
    const rows = await this.sql.query(`SELECT * FROM honua_runs ORDER BY started_at DESC, run DESC`);
    return rows.map(toRun);
  }

  /**
   * Takes the deployment's lock for `run`, or throws naming the run that holds it.
   * A lock left by a run that already ended (a crash between finishing and releasing) is taken over.
   */
  async acquireLock(deployment: string, run: string, at: string): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const won = await this.sql.query(
        `INSERT INTO honua_locks (deployment, run, acquired_at) VALUES (?, ?, ?)
         ON CONFLICT (deployment) DO NOTHING RETURNING run`,
        [deployment, run, at],
      );
      if (won.length === 1) return;
      const holder = await this.lockHolder(deployment);
      if (!holder) continue;
      if (holder === run) return;
      const held = await this.getRun(holder);
      if (held && !["running", "waiting", "paused"].includes(held.status)) {
        await this.sql.query(`DELETE FROM honua_locks WHERE deployment = ? AND run = ?`, [deployment, holder]);
        continue;
      }
      throw new AgentError(
        "conflict",
        `deployment ${deployment} already has a modification in progress: run ${holder}` +
          (held ? ` (${held.workflow}, ${held.status}, requested by ${held.requestedBy})` : ""),
        { holder },
      );
    }
    throw new AgentError("conflict", `could not take the lock on ${deployment}`);
  }

  async lockHolder(deployment: string): Promise<string | undefined> {
    const rows = await this.sql.query(`SELECT run FROM honua_locks WHERE deployment = ?`, [deployment]);
    return rows[0] ? str(rows[0].run) : undefined;
  }

  /** Releases only if `run` holds it: a late release never frees someone else's lock. */
  async releaseLock(deployment: string, run: string): Promise<void> {
    await this.sql.query(`DELETE FROM honua_locks WHERE deployment = ? AND run = ?`, [deployment, run]);
  }

  /**
   * Records a decision once. Returns the stored decision and whether this call created it;
   * a second decision on the same interrupt changes nothing and gets the first one back.
   */
  /** `deployment`: the run's, when the caller has just read its row (a run never changes deployment), saving the lookup. */
  async recordDecision(d: StoredDecision, opts: { closeTicketAt?: string; deployment?: string } = {}): Promise<{ won: boolean; decision: StoredDecision }> {
    const deployment = opts.deployment ?? (await deploymentOfRun(this.sql, d.run));
    const inserted = await this.sql.exclusive(auditLock(deployment), async () => {
      const rows = await this.sql.query(
        `INSERT INTO honua_decisions (run, interrupt, step, stage, kind, decision, by_user, at, plan_hash, comment, member_of, wall_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (run, interrupt) DO NOTHING RETURNING *`,
        [d.run, d.interrupt, d.step, d.stage, d.kind, d.decision, d.by, d.at, d.planHash, d.comment, JSON.stringify(d.groups), d.wallAt ?? null],
      );
      if (rows[0]) await appendRecord(this.sql, deployment, "decision", rows[0], d.wallAt ?? d.at);
      // The gate's ticket closes in the same commit as the decision that closes it (one fsync, not two).
      if (rows[0] && opts.closeTicketAt) await this.closeTicket(d.run, d.interrupt, opts.closeTicketAt);
      return rows;
    });
    if (inserted[0]) return { won: true, decision: toDecision(inserted[0]) };
    const existing = await this.getDecision(d.run, d.interrupt);
    if (!existing) throw new Error(`decision for ${d.run}/${d.interrupt} vanished`);
    return { won: false, decision: existing };
  }

  async getDecision(run: string, interrupt: string): Promise<StoredDecision | undefined> {
    const rows = await this.sql.query(`SELECT * FROM honua_decisions WHERE run = ? AND interrupt = ?`, [run, interrupt]);
    return rows[0] ? toDecision(rows[0]) : undefined;
  }

  async listDecisions(run: string): Promise<StoredDecision[]> {
    const rows = await this.sql.query(`SELECT * FROM honua_decisions WHERE run = ? ORDER BY at, COALESCE(wall_at, at), interrupt`, [run]);
    return rows.map(toDecision);
  }

  /**
   * Marks which process drives a run; refuses when another live process does. The update is a
   * compare-and-swap on the owner it read, so two processes racing for a free run cannot both win.
   */
  /**
   * `seen`: the claim as the caller has just read it with the run's row (saves a read). The claim is a compare-and-swap
   * on that owner either way: one that changed since is refused like one held.
   */
  async claim(run: string, owner: string, at: string, isAlive: (owner: string, claimedAt: string | null) => boolean, seen?: Pick<RunRow, "owner" | "claimedAt">): Promise<void> {
    const known = seen ?? (await this.claimOf(run));
    const current = known?.owner ?? null;
    const refuse = (holder: string) => new AgentError("conflict", `run ${run} is being driven by another process (${holder})`);
    if (current !== null && current !== owner && isAlive(current, known?.claimedAt ?? null)) throw refuse(current);
    const won = await this.lightSql.query(
      `UPDATE honua_runs SET owner = ?, claimed_at = ? WHERE run = ? AND COALESCE(owner, '') = ? RETURNING run`,
      [owner, at, run, current ?? ""],
    );
    if (won.length === 0) {
      const now = await this.sql.query(`SELECT owner FROM honua_runs WHERE run = ?`, [run]);
      throw refuse(String(now[0]?.owner ?? "unknown"));
    }
  }

  /** Who drives a run now (null: no one) and when the claim was last renewed; undefined for an unknown run. */
  async claimOf(run: string): Promise<{ owner: string | null; claimedAt: string | null } | undefined> {
    const rows = await this.sql.query(`SELECT owner, claimed_at FROM honua_runs WHERE run = ?`, [run]);
    return rows[0] ? { owner: nullableStr(rows[0].owner), claimedAt: nullableStr(rows[0].claimed_at) } : undefined;
  }

  /** Runs not ended that name a driver: the ones a driver that is gone may have left (each with its claim). */
  async claimedRuns(): Promise<{ run: string; owner: string; claimedAt: string | null }[]> {
    const rows = await this.sql.query(`SELECT run, owner, claimed_at FROM honua_runs WHERE owner IS NOT NULL AND status NOT IN ('done', 'failed', 'rolled-back', 'rejected', 'cancelled') ORDER BY started_at, run`);
    return rows.map((r) => ({ run: String(r.run), owner: String(r.owner), claimedAt: nullableStr(r.claimed_at) }));
  }

  /** Renews a claim while its owner drives the run: a claim not renewed for a lease is a crashed driver's. */
  async heartbeat(run: string, owner: string, at: string): Promise<void> {
    await this.lightSql.query(`UPDATE honua_runs SET claimed_at = ? WHERE run = ? AND owner = ?`, [at, run, owner]);
  }

  /** Gives a run back; only the owner's release counts. */
  async release(run: string, owner: string): Promise<void> {
    await this.lightSql.query(`UPDATE honua_runs SET owner = NULL WHERE run = ? AND owner = ?`, [run, owner]);
  }

  /**
   * The first value recorded under `key` for a run, forever: how a step that re-runs after a crash finds
   * what it decided before (e.g. when its monitoring window started) instead of starting over.
   */
  /**
   * An updatable per-run cursor (e.g. where a batch copy has got to): LangGraph checkpoints only between steps, so a
   * long step keeps its place here, saved after every batch.
   */
  async saveCursor(run: string, key: string, value: string, at: string): Promise<void> {
    await this.sql.query(`INSERT INTO honua_cursors (run, key, value, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (run, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, [run, key, value, at]);
  }

  async cursor(run: string, key: string): Promise<string | null> {
    const rows = await this.sql.query(`SELECT value FROM honua_cursors WHERE run = ? AND key = ?`, [run, key]);
    return rows[0] ? str(rows[0].value) : null;
  }

  async remember(run: string, key: string, value: string): Promise<string> {
    await this.sql.query(`INSERT INTO honua_memo (run, key, value) VALUES (?, ?, ?) ON CONFLICT (run, key) DO NOTHING`, [run, key, value]);
    const rows = await this.sql.query(`SELECT value FROM honua_memo WHERE run = ? AND key = ?`, [run, key]);
    if (!rows[0]) throw new Error(`memo ${run}/${key} vanished`);
    return str(rows[0].value);
  }

  /**
   * Write-ahead record of what a side effect will replace, under its idempotency key. The first record wins: a
   * replay after a crash gets back what the first attempt found, not what it sees after its own change.
   */
  async journalIntend(e: { run: string; key: string; step: string; stage: number | null; effects: Effect[]; at: string }): Promise<JournalEntry> {
    const deployment = await deploymentOfRun(this.sql, e.run);
    await this.sql.exclusive(auditLock(deployment), async () => {
      const rows = await this.sql.query(
        `INSERT INTO honua_journal (run, key, step, stage, seq, effects, done, at)
         SELECT ?, ?, ?, ?, COALESCE(MAX(seq), 0) + 1, ?, 0, ? FROM honua_journal WHERE run = ?
         ON CONFLICT (run, key) DO NOTHING RETURNING *`,
        [e.run, e.key, e.step, e.stage, JSON.stringify(e.effects), e.at, e.run],
      );
      if (rows[0]) await appendRecord(this.sql, deployment, "journal-intend", rows[0], e.at);
    });
    const got = await this.journalEntry(e.run, e.key);
    if (!got) throw new Error(`journal entry ${e.run}/${e.key} vanished`);
    return got;
  }

  /**
   * Marks a side effect as having returned, adding what its result told (once: a replay adds nothing). `at` (on the
   * run's clock) dates its audit entry; without it, the entry carries the time the effect was intended.
   */
  async journalDone(run: string, key: string, effects: Effect[], at?: string): Promise<void> {
    const deployment = await deploymentOfRun(this.sql, run);
    await this.sql.exclusive(auditLock(deployment), async () => {
      const prior = await this.journalEntry(run, key);
      if (!prior) throw new Error(`journal entry ${run}/${key} was never intended`);
      if (prior.done) return;
      const rows = await this.sql.query(
        `UPDATE honua_journal SET done = 1, effects = ? WHERE run = ? AND key = ? AND done = 0 RETURNING *`,
        [JSON.stringify([...prior.effects, ...effects]), run, key],
      );
      if (rows[0]) await appendRecord(this.sql, deployment, "journal-done", rows[0], at ?? prior.at);
    });
  }

  async journalEntry(run: string, key: string): Promise<JournalEntry | undefined> {
    const rows = await this.sql.query(`SELECT * FROM honua_journal WHERE run = ? AND key = ?`, [run, key]);
    return rows[0] ? toJournal(rows[0]) : undefined;
  }

  /** A run's journal in the order its side effects were first recorded. */
  async journal(run: string): Promise<JournalEntry[]> {
    const rows = await this.sql.query(`SELECT * FROM honua_journal WHERE run = ? ORDER BY seq, key`, [run]);
    return rows.map(toJournal);
  }

  /** Raw data behind a decision (metric queries and values), kept beside the checkpoints rather than in them. */
  async putEvidence(run: string, key: string, body: unknown): Promise<void> {
    await this.sql.query(`INSERT INTO honua_evidence (run, key, body) VALUES (?, ?, ?) ON CONFLICT (run, key) DO UPDATE SET body = excluded.body`, [run, key, JSON.stringify(body)]);
  }

  /**
   * One record of a run's transcript (`steps`: a step record, `decisions`: a decision as applied) at its place (`seq`,
   * 0-based), kept beside the checkpoints: the graph state holds only how many there are, so a checkpoint does not copy
   * the whole transcript. Written before the checkpoint that counts it; a node replayed after a crash before that
   * checkpoint writes its place again (the last write wins, and only a counted place is ever read).
   */
  async putRecord(run: string, list: RecordList, seq: number, name: string, record: unknown): Promise<void> {
    await this.recordsSql.query(UPSERT_RECORD, [run, list, seq, name, JSON.stringify(record)]);
  }

  /** The records of `list` at places `from` (inclusive) to `to` (exclusive), in order; a missing place is an error. */
  async records(run: string, list: RecordList, from: number, to: number): Promise<unknown[]> {
    if (to <= from) return [];
    const rows = await this.recordsSql.query(`SELECT seq, body FROM honua_records WHERE run = ? AND list = ? AND seq >= ? AND seq < ? ORDER BY seq`, [run, list, from, to]);
    if (rows.length !== to - from) {
      const have = new Set(rows.map((r) => Number(r.seq)));
      const missing = Array.from({ length: to - from }, (_, i) => from + i).filter((i) => !have.has(i));
      throw new AgentError("failed", `run ${run}: ${list} record(s) ${missing.join(", ")} counted by its checkpoint are missing from the agent store (was it replaced or pruned?)`);
    }
    return rows.map((r) => JSON.parse(str(r.body)) as unknown);
  }

  /** Bytes of the records kept for a run (the benchmark's account of what moved out of the checkpoints). */
  async recordBytes(run: string): Promise<number> {
    const rows = await this.recordsSql.query(`SELECT COALESCE(SUM(LENGTH(body)), 0) AS bytes FROM honua_records WHERE run = ?`, [run]);
    return Number(rows[0]?.bytes ?? 0);
  }

  async evidence(run: string): Promise<Record<string, unknown>> {
    const rows = await this.sql.query(`SELECT key, body FROM honua_evidence WHERE run = ? ORDER BY key`, [run]);
    return Object.fromEntries(rows.map((r) => [str(r.key), JSON.parse(str(r.body)) as unknown]));
  }

  /** Records a control request; the same id twice (a double click) records it once. */
  async addControl(c: Omit<Control, "resolvedAt">): Promise<boolean> {
    const deployment = await deploymentOfRun(this.sql, c.run);
    return this.sql.exclusive(auditLock(deployment), async () => {
      const rows = await this.sql.query(
        `INSERT INTO honua_controls (run, id, kind, by_user, reason, at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (run, id) DO NOTHING RETURNING *`,
        [c.run, c.id, c.kind, c.by, c.reason, c.at],
      );
      if (rows[0]) await appendRecord(this.sql, deployment, "control", rows[0], c.at);
      return rows.length === 1;
    });
  }

  async openControls(run: string): Promise<Control[]> {
    const rows = await this.sql.query(`SELECT * FROM honua_controls WHERE run = ? AND resolved_at IS NULL ORDER BY at, id`, [run]);
    return rows.map(toControl);
  }

  async resolveControls(run: string, kinds: readonly Control["kind"][], at: string): Promise<void> {
    const deployment = await deploymentOfRun(this.sql, run);
    await this.sql.exclusive(auditLock(deployment), async () => {
      for (const kind of kinds) {
        const rows = await this.sql.query(`UPDATE honua_controls SET resolved_at = ? WHERE run = ? AND kind = ? AND resolved_at IS NULL RETURNING *`, [at, run, kind]);
        for (const r of rows.sort((a, b) => str(a.id).localeCompare(str(b.id)))) await appendRecord(this.sql, deployment, "control-resolved", r, at);
      }
    });
  }

  /**
   * Records what an operator did outside a run (e.g. `doctor --release`), chained under its deployment. Call it inside
   * the transaction that did it, so the record and its audit entry commit with the action.
   */
  async recordOperatorAction(a: { at: string; actor: string; action: string; deployment: string | null; run: string | null; detail: string }): Promise<string> {
    const id = randomUUID();
    const deployment = a.deployment ?? (a.run ? await deploymentOfRun(this.sql, a.run) : UNASSIGNED);
    await this.sql.exclusive(auditLock(deployment), async () => {
      const rows = await this.sql.query(
        `INSERT INTO honua_operator_actions (id, at, actor, action, deployment, run, detail) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *`,
        [id, a.at, a.actor, a.action, a.deployment, a.run, a.detail],
      );
      if (!rows[0]) throw new Error(`operator action ${id} was not recorded`);
      await appendRecord(this.sql, deployment, "operator-action", rows[0], a.at);
    });
    return id;
  }

  /** Opens a ticket for a gate the first time it is seen; later calls return the existing one. */
  async openTicket(t: Pick<GateTicket, "run" | "interrupt" | "step" | "kind" | "planHash" | "askedAt" | "expiresAt">): Promise<GateTicket> {
    // Every summary of a waiting run comes here: a read answers all but the first, with no write.
    const existing = await this.getTicket(t.run, t.interrupt);
    if (existing) return existing;
    await this.sql.query(
      `INSERT INTO honua_gates (run, interrupt, step, kind, plan_hash, asked_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (run, interrupt) DO NOTHING`,
      [t.run, t.interrupt, t.step, t.kind, t.planHash, t.askedAt, t.expiresAt],
    );
    const got = await this.getTicket(t.run, t.interrupt);
    if (!got) throw new Error(`gate ticket ${t.run}/${t.interrupt} vanished`);
    return got;
  }

  async getTicket(run: string, interrupt: string): Promise<GateTicket | undefined> {
    const rows = await this.sql.query(`SELECT * FROM honua_gates WHERE run = ? AND interrupt = ?`, [run, interrupt]);
    return rows[0] ? toTicket(rows[0]) : undefined;
  }

  async openTickets(): Promise<GateTicket[]> {
    const rows = await this.sql.query(`SELECT * FROM honua_gates WHERE closed_at IS NULL ORDER BY asked_at, run`);
    return rows.map(toTicket);
  }

  async closeTicket(run: string, interrupt: string, at: string): Promise<void> {
    await this.sql.query(`UPDATE honua_gates SET closed_at = ? WHERE run = ? AND interrupt = ? AND closed_at IS NULL`, [at, run, interrupt]);
  }

  /** Marks a notice as sent; true only for the first caller, so each notice goes out once. */
  async noteTicket(run: string, interrupt: string, notice: "warned" | "expired", at: string): Promise<boolean> {
    const col = notice === "warned" ? "warned_at" : "expired_at";
    const rows = await this.sql.query(
      `UPDATE honua_gates SET ${col} = ? WHERE run = ? AND interrupt = ? AND ${col} IS NULL RETURNING run`,
      [at, run, interrupt],
    );
    return rows.length === 1;
  }

  /** Re-opens an expired gate with a fresh expiry. */
  async renewTicket(run: string, interrupt: string, askedAt: string, expiresAt: string | null): Promise<void> {
    await this.sql.query(
      `UPDATE honua_gates SET asked_at = ?, expires_at = ?, warned_at = NULL, expired_at = NULL WHERE run = ? AND interrupt = ?`,
      [askedAt, expiresAt, run, interrupt],
    );
  }

  /** Removes a run that never started (its deployment was locked). */
  async deleteUnstartedRun(run: string): Promise<void> {
    await this.sql.query(`DELETE FROM honua_runs WHERE run = ? AND status = 'running'`, [run]);
  }

  async close(): Promise<void> {
    for (const other of new Set([this.recordsSql, this.lightSql])) if (other !== this.sql) await other.close();
    await this.sql.close();
  }
}
