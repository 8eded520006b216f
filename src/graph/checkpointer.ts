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

/**
 * The official savers only: SQLite at `$HONUA_AGENT_HOME/checkpoints.sqlite` by default,
 * PostgreSQL when `HONUA_AGENT_DATABASE_URL` is set (setup once, under an advisory lock).
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
    await sql.exclusive("honua-agent-checkpointer-setup", () => checkpointer.setup());
    await store.setup();
    return { checkpointer, store, location: "postgres", close: () => store.close() };
  }
  const home = agentHome(env, cwd);
  mkdirSync(home, { recursive: true });
  const db = new Database(join(home, "checkpoints.sqlite"));
  db.pragma("journal_mode = WAL");
  db.pragma("busy_timeout = 10000");
  const checkpointer = new SqliteSaver(db);
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
