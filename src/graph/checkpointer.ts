import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { RunnableConfig } from "@langchain/core/runnables";
import type { BaseCheckpointSaver } from "@langchain/langgraph";
// From the checkpoint package, which the savers load anyway: `doctor` reads state without loading LangGraph itself.
import { INTERRUPT, WRITES_IDX_MAP, deepCopy, type CheckpointTuple } from "@langchain/langgraph-checkpoint";
import type { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import { SqliteSaver } from "@langchain/langgraph-checkpoint-sqlite";
import Database from "better-sqlite3";
import type pg from "pg";
import { AgentError } from "../core/errors.js";
import { STORE_FILES, checkStoreFile, recordStoreFile } from "../store/files.js";
import { cachedPrepare, postgresSql, sqliteSql } from "../store/sql.js";
import { AgentStore } from "../store/store.js";

export interface Persistence {
  checkpointer: BaseCheckpointSaver;
  /** Hands one read of a run's latest checkpoint on to the next (see ReadCarry). */
  carry: ReadCarry;
  store: AgentStore;
  /** Where state lives, for messages. */
  location: string;
  close(): Promise<void>;
}

export function agentHome(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return resolve(cwd, env.HONUA_AGENT_HOME ?? ".honua-agent");
}

/** The thread a read of the latest (root) checkpoint is for; undefined for a read of a given checkpoint or a subgraph's. */
const latestRead = (config: RunnableConfig): string | undefined => {
  const c = config.configurable;
  if (!c || c.checkpoint_id !== undefined || (c.checkpoint_ns ?? "") !== "") return undefined;
  return typeof c.thread_id === "string" ? c.thread_id : undefined;
};

/**
 * What a run's checkpoint says (its latest, or the one `config` names), read from the saved tuple itself: its channel
 * values as saved, the interrupts its tasks raised and that wait for a resume, and when it was written (undefined: the
 * run has no checkpoint yet).
 * This is what a summary needs from `getState`, without the snapshot `getState` builds around it (the channels
 * rebuilt, every next task prepared and its id hashed), which was the largest single cost of reading where a run
 * stands. It relies on two things of LangGraph's saved format, both part of its checkpointer interface: a channel
 * value is saved as the value (`LastValue`, which every field of a run's state is), and an interrupt is a pending
 * write to the `__interrupt__` channel holding a list of `{ id, value }` (or one, as older checkpoints hold it).
 * Values written outside a task (`updateState`, which nothing here calls) would not show; a test compares this
 * with `getState` over whole runs of every workflow.
 */
export async function savedState(checkpointer: BaseCheckpointSaver, config: RunnableConfig): Promise<{ values: Record<string, unknown>; interrupts: { id?: string; value?: unknown }[]; createdAt: string | undefined }> {
  const t = await checkpointer.getTuple(config);
  if (!t) return { values: {}, interrupts: [], createdAt: undefined };
  const interrupts: { id?: string; value?: unknown }[] = [];
  for (const [, channel, value] of t.pendingWrites ?? []) {
    if (channel !== INTERRUPT) continue;
    for (const i of Array.isArray(value) ? value : [value]) if (i && typeof i === "object") interrupts.push(i as { id?: string; value?: unknown });
  }
  return { values: t.checkpoint.channel_values, interrupts, createdAt: t.checkpoint.ts };
}

/**
 * Hands what one read of a thread's latest checkpoint found to the next read of it, once: a decision reads the run's
 * state to check the gate, and the resume that follows starts from that same checkpoint without reading and decoding it
 * again. Only for a caller that holds the run's claim (no other process writes the run's checkpoints meanwhile); a
 * write of the thread through this saver drops what is held, so the carried read is never older than the latest.
 * The copy is taken when it is read, before the state snapshot built from it changes its version maps.
 */
export class ReadCarry {
  /** null: armed, nothing read yet. */
  private readonly held = new Map<string, CheckpointTuple | null>();

  /** Arms a carry for `thread`; the returned function disarms it (a carry not taken is dropped). */
  hold(thread: string): () => void {
    this.held.set(thread, null);
    return () => {
      this.held.delete(thread);
    };
  }

  take(config: RunnableConfig): CheckpointTuple | undefined {
    const thread = latestRead(config);
    const t = thread === undefined ? undefined : this.held.get(thread);
    if (!t || thread === undefined) return undefined;
    this.held.delete(thread);
    return t;
  }

  offer(config: RunnableConfig, tuple: CheckpointTuple | undefined): void {
    const thread = latestRead(config);
    if (thread === undefined || !tuple || this.held.get(thread) !== null) return;
    const c = tuple.checkpoint;
    this.held.set(thread, {
      ...tuple,
      metadata: tuple.metadata ? { ...tuple.metadata } : undefined,
      pendingWrites: tuple.pendingWrites ? [...tuple.pendingWrites] : undefined,
      checkpoint: { ...c, channel_values: { ...c.channel_values }, channel_versions: { ...c.channel_versions }, versions_seen: deepCopy(c.versions_seen) },
    });
  }

  /** A write of the thread: what is held is no longer its latest checkpoint. */
  wrote(thread: unknown): void {
    if (typeof thread === "string" && this.held.has(thread)) this.held.delete(thread);
  }
}

/** The official SQLite saver, whose two tables (created lazily, one statement each) are created in one transaction. */
class AtomicSetupSqliteSaver extends SqliteSaver {
  readonly carry = new ReadCarry();

  protected override setup(): void {
    if (this.isSetup) return;
    this.db.transaction(() => super.setup()).immediate();
  }

  override async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const carried = this.carry.take(config);
    if (carried) return carried;
    const t = await super.getTuple(config);
    this.carry.offer(config, t);
    return t;
  }

  override put(...args: Parameters<SqliteSaver["put"]>): ReturnType<SqliteSaver["put"]> {
    this.carry.wrote(args[0].configurable?.thread_id);
    return super.put(...args);
  }

  override putWrites(...args: Parameters<SqliteSaver["putWrites"]>): ReturnType<SqliteSaver["putWrites"]> {
    this.carry.wrote(args[0].configurable?.thread_id);
    return super.putWrites(...args);
  }

  override deleteThread(thread: string): Promise<void> {
    this.carry.wrote(thread);
    return super.deleteThread(thread);
  }
}

/**
 * The official saver's writes, each sent as one statement. It sends a checkpoint as BEGIN, one INSERT per channel blob,
 * the checkpoint's INSERT and COMMIT (8 round trips for a step that changes 5 channels), and a task's writes as BEGIN,
 * one INSERT each and COMMIT: from a decision to its next step started, 18 of the 34 statements on PostgreSQL. The same
 * rows go in with the same conflict rules, the blobs through a data-modifying CTE of the checkpoint's own INSERT (one
 * statement is one transaction: both or neither). The tables are the saver's, in the schema it was set up in.
 */
const PG_PUT = (schema: string) => `WITH blobs AS (
    INSERT INTO "${schema}".checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT $1, $2, b.channel, b.version, b.type, b.blob FROM unnest($7::text[], $8::text[], $9::text[], $10::bytea[]) AS b(channel, version, type, blob)
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
  )
  INSERT INTO "${schema}".checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
  VALUES ($1, $2, $3, $4, $5, $6)
  ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata`;
const PG_WRITES = (schema: string, upsert: boolean) => `INSERT INTO "${schema}".checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob)
  SELECT $1, $2, $3, $4, w.idx, w.channel, w.type, w.blob FROM unnest($5::int[], $6::text[], $7::text[], $8::bytea[]) AS w(idx, channel, type, blob)
  ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO ${upsert ? "UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob" : "NOTHING"}`;

/** The official PostgreSQL saver with the same read carry, its writes one statement each; built from the saver class imported on first use. */
function carryingPostgresSaver(Base: typeof PostgresSaver, pool: pg.Pool, schema = "public") {
  const putSql = PG_PUT(schema);
  const upsertWrites = PG_WRITES(schema, true);
  const insertWrites = PG_WRITES(schema, false);
  return class CarryingPostgresSaver extends Base {
    readonly carry = new ReadCarry();

    override async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
      const carried = this.carry.take(config);
      if (carried) return carried;
      const t = await super.getTuple(config);
      this.carry.offer(config, t);
      return t;
    }

    override async put(...[config, checkpoint, metadata, newVersions]: Parameters<PostgresSaver["put"]>): ReturnType<PostgresSaver["put"]> {
      this.carry.wrote(config.configurable?.thread_id);
      if (config.configurable === undefined) throw new Error(`Missing "configurable" field in "config" param`);
      const { thread_id, checkpoint_ns = "", checkpoint_id } = config.configurable as { thread_id: string; checkpoint_ns?: string; checkpoint_id?: string };
      const [blobs, meta] = await Promise.all([this._dumpBlobs(thread_id, checkpoint_ns, checkpoint.channel_values, newVersions), this._dumpMetadata(metadata)]);
      await pool.query(putSql, [
        thread_id, checkpoint_ns, checkpoint.id, checkpoint_id, this._dumpCheckpoint(checkpoint), meta,
        blobs.map((b) => b[2]), blobs.map((b) => b[3]), blobs.map((b) => b[4]), blobs.map((b) => b[5] ?? null),
      ]);
      return { configurable: { thread_id, checkpoint_ns, checkpoint_id: checkpoint.id } };
    }

    override async putWrites(...[config, writes, taskId]: Parameters<PostgresSaver["putWrites"]>): ReturnType<PostgresSaver["putWrites"]> {
      this.carry.wrote(config.configurable?.thread_id);
      if (writes.length === 0) return;
      const c = config.configurable as { thread_id: string; checkpoint_ns: string; checkpoint_id: string };
      // As the official saver: writes to the special channels alone (error, interrupt, resume...) replace those already
      // there, anything else is written once. One statement cannot upsert a row twice, so of two writes to one special
      // channel the later is kept, as the official saver's one-by-one upserts leave it.
      const upsert = writes.every((w) => w[0] in WRITES_IDX_MAP);
      let rows = await this._dumpWrites(c.thread_id, c.checkpoint_ns, c.checkpoint_id, taskId, writes);
      if (upsert) rows = [...new Map(rows.map((r) => [r[4], r])).values()];
      await pool.query(upsert ? upsertWrites : insertWrites, [
        c.thread_id, c.checkpoint_ns, c.checkpoint_id, taskId, rows.map((r) => r[4]), rows.map((r) => r[5]), rows.map((r) => r[6]), rows.map((r) => r[7]),
      ]);
    }

    override deleteThread(thread: string): Promise<void> {
      this.carry.wrote(thread);
      return super.deleteThread(thread);
    }
  };
}

/**
 * Runs the official PostgresSaver's setup (its migrations and their bookkeeping, which it sends one statement at a
 * time) inside one transaction on one connection, under a transaction-scoped advisory lock: several processes
 * setting up at once wait for each other, and a crash in the middle leaves no migration applied but unrecorded.
 * Each statement runs under a savepoint, so the saver's own handling of a statement error (a missing migrations
 * table on a fresh database) works as it does outside a transaction.
 */
async function setupPostgresSaver(pool: pg.Pool, Saver: typeof PostgresSaver): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    try {
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", ["honua-agent-checkpointer-setup"]);
      const inTransaction = {
        async query(text: string, values?: unknown[]) {
          await client.query("SAVEPOINT honua_setup");
          try {
            const res = await client.query(text, values);
            await client.query("RELEASE honua_setup");
            return res;
          } catch (e) {
            await client.query("ROLLBACK TO honua_setup");
            throw e;
          }
        },
        release() {},
      };
      await new Saver({ connect: async () => inTransaction } as unknown as pg.Pool).setup();
      await client.query("COMMIT");
    } catch (e) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw e;
    }
  } finally {
    client.release();
  }
}

/**
 * Checkpoints of a run the agent's records do not know: the records were lost, truncated or replaced while the
 * checkpoints stayed. Starting would accept a second run on a deployment another run is part-way through, so it
 * is refused (exit 2) until an operator restores the records or looks with `honua-agent doctor`.
 */
export async function orphanCheckpoints(store: AgentStore, checkpointRuns: () => string[] | Promise<string[]>): Promise<string[]> {
  const runs = await checkpointRuns();
  if (runs.length === 0) return [];
  const known = new Set((await store.sql.query<{ run: string }>("SELECT run FROM honua_runs")).map((r) => r.run));
  return runs.filter((r) => !known.has(r));
}

async function checkPairing(store: AgentStore, checkpointRuns: () => string[] | Promise<string[]>, checkpoints: string, records: string): Promise<void> {
  const orphans = await orphanCheckpoints(store, checkpointRuns);
  if (orphans.length === 0) return;
  throw new AgentError(
    "bad-input",
    `${checkpoints} holds ${orphans.length} run(s) that ${records} do not know (${orphans.slice(0, 3).join(", ")}${orphans.length > 3 ? ", …" : ""}): the agent's records were lost or replaced, and a deployment one of them was changing would look free. Nothing was changed. Restore the records from a backup, or run \`honua-agent doctor\``,
    { orphans },
  );
}

/** A PostgreSQL store that cannot be reached or set up: the setting named, what failed, exit 2. */
export function storeConnectionError(e: unknown, url: string): unknown {
  if (e instanceof AgentError) return e;
  const err = e as { code?: string; message?: string };
  const shown = redactUrl(url);
  const why =
    err.code === "ECONNREFUSED" ? "nothing accepts connections there"
    : err.code === "ENOTFOUND" || err.code === "EAI_AGAIN" ? "the host name does not resolve"
    : err.code === "ETIMEDOUT" ? "the connection timed out"
    : err.code === "28P01" || err.code === "28000" ? "the server refused the credentials"
    : err.code === "3D000" ? "the database does not exist"
    : err.code === "42501" ? "the user may not create or read the agent's tables"
    : e instanceof TypeError || /invalid url|Invalid URL/i.test(err.message ?? "") ? "it is not a valid postgres:// URL"
    : null;
  const message = `HONUA_AGENT_DATABASE_URL (${shown}): cannot open the agent's store: ${why ? `${why} (${err.message})` : (err.message ?? String(e))}. Nothing was changed; check the setting.`;
  return new AgentError("bad-input", message, { setting: "HONUA_AGENT_DATABASE_URL", code: err.code ?? null });
}

/** The URL with its password hidden. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url.replace(/:\/\/([^:@/]*):[^@/]*@/, "://$1:***@");
  }
}

/**
 * The official savers only: SQLite at `$HONUA_AGENT_HOME/checkpoints.sqlite` by default,
 * PostgreSQL when `HONUA_AGENT_DATABASE_URL` is set. Their tables are created in one transaction each.
 */
export interface OpenOptions {
  /** Refuse checkpoints the records do not know (default). `doctor` opens without it, to report them. */
  checkPairing?: boolean;
}

export async function openPersistence(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd(), opts: OpenOptions = {}): Promise<Persistence & { checkpointRuns(): Promise<string[]> }> {
  const pairing = opts.checkPairing ?? true;
  const url = env.HONUA_AGENT_DATABASE_URL;
  if (url) {
    if (!/^(?:postgres(?:ql)?:\/\/|socket:|\/)/.test(url)) {
      throw new AgentError("bad-input", `HONUA_AGENT_DATABASE_URL (${redactUrl(url)}) is not a postgres:// URL (e.g. postgres://honua@db.internal:5432/honua_agent). Nothing was changed; check the setting.`, { setting: "HONUA_AGENT_DATABASE_URL" });
    }
    // Imported here: a store on SQLite (the default) never loads the PostgreSQL driver or saver.
    const [{ default: pg }, { PostgresSaver }] = await Promise.all([import("pg"), import("@langchain/langgraph-checkpoint-postgres")]);
    let pool: pg.Pool;
    let light: pg.Pool;
    try {
      pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 15_000 });
      // As on SQLite, what a power cut may take back without harm commits without waiting for the WAL to be flushed
      // (synchronous_commit=off on these sessions): checkpoints and the step records they count (a record commits
      // before its checkpoint, so WAL order keeps every surviving checkpoint's records), claims, deliveries seen.
      // Decisions, controls and the journal commit on `pool`, which waits for the flush, and so flushes everything
      // committed before them. A server crash can lose the last fraction of a second of the former; a client crash
      // loses nothing committed.
      light = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 15_000, options: "-c synchronous_commit=off" });
    } catch (e) {
      throw storeConnectionError(e, url);
    }
    // An idle connection dropped by the server (restart, failover, admin) is emitted here; unhandled, it would
    // kill the process. The pool replaces it; the next query that cannot connect fails with its own error.
    for (const p of [pool, light]) p.on("error", (e) => process.stderr.write(`honua-agent: idle PostgreSQL connection lost: ${e.message}\n`));
    const sql = postgresSql(pool);
    const lightSql = postgresSql(light);
    const pgRuns = async () => (await pool.query<{ run: string }>("SELECT DISTINCT thread_id AS run FROM checkpoints")).rows.map((r) => r.run);
    const checkpointer = new (carryingPostgresSaver(PostgresSaver, light))(light);
    // One database: the records' table is the main store's, reached through the pool that does not wait for the flush.
    const store = new AgentStore(sql, { records: lightSql, light: lightSql });
    try {
      await setupPostgresSaver(pool, PostgresSaver);
      await store.setup();
      if (pairing) await checkPairing(store, pgRuns, "the checkpoints table", "the honua_* tables");
    } catch (e) {
      await pool.end().catch(() => undefined);
      await light.end().catch(() => undefined);
      throw storeConnectionError(e, url);
    }
    return { checkpointer, carry: checkpointer.carry, store, location: "postgres", close: () => store.close(), checkpointRuns: pgRuns };
  }
  const home = agentHome(env, cwd);
  mkdirSync(home, { recursive: true });
  // Checked before either is opened: a damaged, replaced or vanished file is refused by name, never recreated.
  for (const [file, f] of Object.entries(STORE_FILES)) checkStoreFile(home, file, f.role, f.tables);
  const db = new Database(join(home, "checkpoints.sqlite"));
  db.pragma("journal_mode = WAL");
  db.pragma("busy_timeout = 10000");
  // Checkpoints stay at better-sqlite3's NORMAL: a checkpoint lost to a power cut is replayed from the one before it, and
  // what must survive (decisions, controls, the journal of side effects) is in the agent store, at FULL. The step records
  // a checkpoint counts are in this file too, written before it into the same log, so they survive whenever it does.
  // The official saver prepares its INSERTs on every put and putWrites (every step); the same statements are reused instead.
  // Its statements run to completion when called (no iterators held), so one statement per text is safe to share.
  db.prepare = cachedPrepare(db.prepare.bind(db)) as Database.Database["prepare"];
  const checkpointer = new AtomicSetupSqliteSaver(db);
  // Step and decision records are kept in the checkpoints' file, at its durability (see AgentStore).
  const store = new AgentStore(sqliteSql(join(home, "agent.sqlite")), {
    records: sqliteSql(join(home, "checkpoints.sqlite"), { synchronous: "NORMAL" }),
    recordsInOwnDatabase: true,
    light: sqliteSql(join(home, "agent.sqlite"), { synchronous: "NORMAL" }),
  });
  const sqliteRuns = async () => (db.prepare("SELECT DISTINCT thread_id AS run FROM checkpoints").all() as { run: string }[]).map((r) => r.run);
  try {
    // The saver's tables first: the records' table joins them in its file, and a file holding only that table would be
    // refused by the next open as not the checkpoints' (a kill between the two setups leaves a file that is still theirs).
    (checkpointer as unknown as { setup(): void }).setup();
    await store.setup();
    for (const file of Object.keys(STORE_FILES)) recordStoreFile(home, file);
    if (pairing) await checkPairing(store, sqliteRuns, join(home, "checkpoints.sqlite"), join(home, "agent.sqlite"));
  } catch (e) {
    await store.close();
    db.close();
    throw e;
  }
  return {
    checkpointer,
    carry: checkpointer.carry,
    store,
    location: home,
    checkpointRuns: sqliteRuns,
    close: async () => {
      await store.close();
      checkpointer.db.close();
    },
  };
}
