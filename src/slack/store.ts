import type { Sql } from "../store/store.js";

/** Where a run talks in Slack: its thread, the plan and progress messages. */
export interface ThreadRef {
  run: string;
  channel: string;
  threadTs: string;
  planTs: string | null;
  progressTs: string | null;
}

/** One approval card as posted: which gate (run, interrupt, plan hash) and where. */
export interface CardRef {
  run: string;
  interrupt: string;
  planHash: string;
  channel: string;
  ts: string | null;
  state: "posting" | "open" | "decided" | "expired" | "superseded";
}

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS honua_slack_seen (id TEXT PRIMARY KEY, at TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS honua_slack_threads (
     run TEXT PRIMARY KEY, channel TEXT NOT NULL, thread_ts TEXT NOT NULL, plan_ts TEXT, progress_ts TEXT,
     costed INTEGER NOT NULL DEFAULT 0, reported_at TEXT)`,
  `CREATE INDEX IF NOT EXISTS honua_slack_threads_by_thread ON honua_slack_threads (channel, thread_ts)`,
  `CREATE TABLE IF NOT EXISTS honua_slack_cards (
     run TEXT NOT NULL, interrupt TEXT NOT NULL, plan_hash TEXT NOT NULL, channel TEXT NOT NULL, ts TEXT, state TEXT NOT NULL,
     PRIMARY KEY (run, interrupt, plan_hash))`,
];

type Row = Record<string, unknown>;
const s = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

const toThread = (r: Row): ThreadRef => ({ run: String(r.run), channel: String(r.channel), threadTs: String(r.thread_ts), planTs: s(r.plan_ts), progressTs: s(r.progress_ts) });
const toCard = (r: Row): CardRef => ({
  run: String(r.run), interrupt: String(r.interrupt), planHash: String(r.plan_hash), channel: String(r.channel), ts: s(r.ts), state: String(r.state) as CardRef["state"],
});

/**
 * Slack-side records in the engine's SQL store (SQLite under $HONUA_AGENT_HOME, or PostgreSQL), so they
 * survive a restart and are shared by replicas: seen event ids, run threads, posted cards.
 * Every "do this once" is an insert or update that only one caller can win.
 */
export class SlackStore {
  /** `seenSql`: where deliveries seen are noted, without an fsync of their own (AgentStore.lightSql); by default `sql`. */
  constructor(private readonly sql: Sql, private readonly seenSql: Sql = sql) {}

  async setup(): Promise<void> {
    await this.sql.exclusive("honua-agent-slack-setup", async () => {
      for (const stmt of SCHEMA) await this.sql.query(stmt);
    });
  }

  /** True the first time `id` is seen: Slack retries, duplicate event ids and replayed clicks get false. */
  async firstSight(id: string, at: string): Promise<boolean> {
    const won = await this.seenSql.query(`INSERT INTO honua_slack_seen (id, at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING RETURNING id`, [id, at]);
    return won.length === 1;
  }

  /** Seen ids older than `before` can go: Slack stops retrying after minutes and signatures expire after five. */
  async forgetSeen(before: string): Promise<void> {
    await this.seenSql.query(`DELETE FROM honua_slack_seen WHERE at < ?`, [before]);
  }

  async bindThread(t: ThreadRef): Promise<void> {
    await this.sql.query(
      `INSERT INTO honua_slack_threads (run, channel, thread_ts, plan_ts, progress_ts) VALUES (?, ?, ?, ?, ?) ON CONFLICT (run) DO NOTHING`,
      [t.run, t.channel, t.threadTs, t.planTs, t.progressTs],
    );
  }

  async thread(run: string): Promise<ThreadRef | undefined> {
    const rows = await this.sql.query(`SELECT * FROM honua_slack_threads WHERE run = ?`, [run]);
    return rows[0] ? toThread(rows[0]) : undefined;
  }

  /** The newest run started in a thread (a thread may hold a refused attempt and then a run). */
  async runInThread(channel: string, threadTs: string): Promise<string | undefined> {
    const rows = await this.sql.query(`SELECT run FROM honua_slack_threads WHERE channel = ? AND thread_ts = ? ORDER BY run DESC`, [channel, threadTs]);
    return rows[0] ? String(rows[0].run) : undefined;
  }

  async threads(runs: readonly string[]): Promise<Map<string, ThreadRef>> {
    const out = new Map<string, ThreadRef>();
    for (const r of runs) {
      const t = await this.thread(r);
      if (t) out.set(r, t);
    }
    return out;
  }

  async setProgressTs(run: string, ts: string): Promise<void> {
    await this.sql.query(`UPDATE honua_slack_threads SET progress_ts = ? WHERE run = ?`, [ts, run]);
  }

  /** True for the one caller that gets to put the cost on the plan message. */
  async markCosted(run: string): Promise<boolean> {
    return (await this.sql.query(`UPDATE honua_slack_threads SET costed = 1 WHERE run = ? AND costed = 0 RETURNING run`, [run])).length === 1;
  }

  /** True for the one caller that gets to post the final report. */
  async markReported(run: string, at: string): Promise<boolean> {
    return (await this.sql.query(`UPDATE honua_slack_threads SET reported_at = ? WHERE run = ? AND reported_at IS NULL RETURNING run`, [at, run])).length === 1;
  }

  /** Reserves the card for a gate; false when it is already posted (or being posted) by someone else. */
  async reserveCard(c: Omit<CardRef, "ts" | "state">): Promise<boolean> {
    const won = await this.sql.query(
      `INSERT INTO honua_slack_cards (run, interrupt, plan_hash, channel, ts, state) VALUES (?, ?, ?, ?, NULL, 'posting')
       ON CONFLICT (run, interrupt, plan_hash) DO NOTHING RETURNING run`,
      [c.run, c.interrupt, c.planHash, c.channel],
    );
    return won.length === 1;
  }

  async cardPosted(run: string, interrupt: string, planHash: string, ts: string): Promise<void> {
    await this.sql.query(`UPDATE honua_slack_cards SET ts = ?, state = 'open' WHERE run = ? AND interrupt = ? AND plan_hash = ?`, [ts, run, interrupt, planHash]);
  }

  /** Gives a reservation back when posting failed, so the next reconcile tries again. */
  async dropReservation(run: string, interrupt: string, planHash: string): Promise<void> {
    await this.sql.query(`DELETE FROM honua_slack_cards WHERE run = ? AND interrupt = ? AND plan_hash = ? AND state = 'posting'`, [run, interrupt, planHash]);
  }

  /** Moves a card out of "open" once; returns it to the caller that did. */
  async closeCard(run: string, interrupt: string, state: "decided" | "expired" | "superseded", from: CardRef["state"][] = ["open"]): Promise<CardRef | undefined> {
    const marks = from.map(() => "?").join(", ");
    const rows = await this.sql.query(
      `UPDATE honua_slack_cards SET state = ? WHERE run = ? AND interrupt = ? AND state IN (${marks}) AND ts IS NOT NULL RETURNING *`,
      [state, run, interrupt, ...from],
    );
    return rows[0] ? toCard(rows[0]) : undefined;
  }

  /** Cards still showing buttons, across runs. */
  async openCards(): Promise<CardRef[]> {
    return (await this.sql.query(`SELECT * FROM honua_slack_cards WHERE state = 'open'`)).map(toCard);
  }

  async cards(run: string): Promise<CardRef[]> {
    return (await this.sql.query(`SELECT * FROM honua_slack_cards WHERE run = ?`, [run])).map(toCard);
  }
}
