import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import { SqliteSaver } from "@langchain/langgraph-checkpoint-sqlite";
import Database from "better-sqlite3";
import pg from "pg";
import { postgresSql, sqliteSql } from "../store/sql.js";
import { AgentStore } from "../store/store.js";

export interface Persistence {
  checkpointer: BaseCheckpointSaver;
  store: AgentStore;
  /** Where state lives, for messages. */
  location: string;
  close(): Promise<void>;
}

export function agentHome(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return resolve(cwd, env.HONUA_AGENT_HOME ?? ".honua-agent");
}

/** The official SQLite saver, whose two tables (created lazily, one statement each) are created in one transaction. */
class AtomicSetupSqliteSaver extends SqliteSaver {
  protected override setup(): void {
    if (this.isSetup) return;
    this.db.transaction(() => super.setup()).immediate();
  }
}

/**
 * Runs the official PostgresSaver's setup (its migrations and their bookkeeping, which it sends one statement at a
 * time) inside one transaction on one connection, under a transaction-scoped advisory lock: several processes
 * setting up at once wait for each other, and a crash in the middle leaves no migration applied but unrecorded.
 * Each statement runs under a savepoint, so the saver's own handling of a statement error (a missing migrations
 * table on a fresh database) works as it does outside a transaction.
 */
async function setupPostgresSaver(pool: pg.Pool): Promise<void> {
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
      await new PostgresSaver({ connect: async () => inTransaction } as unknown as pg.Pool).setup();
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
 * The official savers only: SQLite at `$HONUA_AGENT_HOME/checkpoints.sqlite` by default,
 * PostgreSQL when `HONUA_AGENT_DATABASE_URL` is set. Their tables are created in one transaction each.
 */
export async function openPersistence(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<Persistence> {
  const url = env.HONUA_AGENT_DATABASE_URL;
  if (url) {
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    // An idle connection dropped by the server (restart, failover, admin) is emitted here; unhandled, it would
    // kill the process. The pool replaces it; the next query that cannot connect fails with its own error.
    pool.on("error", (e) => process.stderr.write(`honua-agent: idle PostgreSQL connection lost: ${e.message}\n`));
    const sql = postgresSql(pool);
    const checkpointer = new PostgresSaver(pool);
    const store = new AgentStore(sql);
    await setupPostgresSaver(pool);
    await store.setup();
    return { checkpointer, store, location: "postgres", close: () => store.close() };
  }
  const home = agentHome(env, cwd);
  mkdirSync(home, { recursive: true });
  const db = new Database(join(home, "checkpoints.sqlite"));
  db.pragma("journal_mode = WAL");
  db.pragma("busy_timeout = 10000");
  const checkpointer = new AtomicSetupSqliteSaver(db);
  const store = new AgentStore(sqliteSql(join(home, "agent.sqlite")));
  await store.setup();
  return {
    checkpointer,
    store,
    location: home,
    close: async () => {
      await store.close();
      checkpointer.db.close();
    },
  };
}
