import { AsyncLocalStorage } from "node:async_hooks";
import { resolve } from "node:path";
import Database from "better-sqlite3";
import type pg from "pg";

/** A minimal SQL seam so one implementation serves SQLite and PostgreSQL. SQL uses `?` placeholders. */
export interface Sql {
  dialect: "sqlite" | "postgres";
  query<T extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /**
   * Runs `fn` in one transaction that holds an exclusive, cross-process lock named `name`: the statements `fn`
   * sends commit together or not at all (a crash in the middle leaves nothing of them).
   */
  exclusive<T>(name: string, fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Per database file, the transaction this process has open on it (see `sqliteSql`). */
const gates = new Map<string, { open: Promise<void> | null }>();
const gateFor = (path: string): { open: Promise<void> | null } => {
  if (path === ":memory:" || path === "") return { open: null };
  const key = resolve(path);
  let g = gates.get(key);
  if (!g) gates.set(key, (g = { open: null }));
  return g;
};

/**
 * Statements prepared once per distinct SQL text on one connection: the texts are constants (or one per list length),
 * and preparing on every query showed in profiles. At most 1000 are kept; past that a text is prepared each time.
 */
export function statementCache(db: Database.Database): (sql: string) => Database.Statement {
  return cachedPrepare(db.prepare.bind(db));
}

/** `prepare` with its statements kept per SQL text (as statementCache). */
export function cachedPrepare(prepare: (sql: string) => Database.Statement): (sql: string) => Database.Statement {
  const statements = new Map<string, Database.Statement>();
  return (sql) => {
    let stmt = statements.get(sql);
    if (!stmt) {
      stmt = prepare(sql);
      if (statements.size < 1000) statements.set(sql, stmt);
    }
    return stmt;
  };
}

/**
 * How a commit reaches the disk. `FULL` (the default here) fsyncs the WAL on every commit, so a decision, a control
 * request or a journal entry that was committed survives a power loss; better-sqlite3's build default in WAL mode is
 * `NORMAL`, which may lose the last commits. `NORMAL` is for what is only as durable as the checkpoints (the step
 * records kept in the checkpoints' file) and for measuring what FULL costs (bench/).
 */
export type SqliteSynchronous = "FULL" | "NORMAL";

export function sqliteSql(path: string, opts: { synchronous?: SqliteSynchronous } = {}): Sql {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("busy_timeout = 10000");
  // Set per connection (SQLite does not store it in the file); it cannot change inside a transaction, so it is set once here.
  db.pragma(`synchronous = ${opts.synchronous ?? "FULL"}`);
  const prepared = statementCache(db);
  let savepoints = 0;
  // While one caller's transaction is open (across its awaits), every other caller in this process using the same file
  // waits for it: on this connection its statements would land inside the transaction (and be rolled back with it); on
  // another connection to the file they would block the thread in SQLite's busy wait, so the open transaction could
  // never commit. Other processes wait in SQLite's busy wait, as before.
  const gate = gateFor(path);
  const inTransaction = new AsyncLocalStorage<Database.Database>();
  const waitForOthers = async (): Promise<void> => {
    while (gate.open && inTransaction.getStore() !== db) await gate.open;
  };
  return {
    dialect: "sqlite",
    async query<T extends Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
      if (gate.open) await waitForOthers();
      const stmt = prepared(sql);
      if (stmt.reader) return stmt.all(...params) as T[];
      stmt.run(...params);
      return [];
    },
    // better-sqlite3 is synchronous and SQLite serialises writers; an immediate transaction is the cross-process lock,
    // and everything `fn` writes lands in one commit or not at all. Inside another transaction it is a savepoint.
    async exclusive<T>(_name: string, fn: () => Promise<T>): Promise<T> {
      const nested = inTransaction.getStore() === db;
      let done: (() => void) | undefined;
      if (!nested) {
        // Checked and taken with no await in between, so two callers cannot both take it.
        while (gate.open) await gate.open;
        gate.open = new Promise<void>((resolve) => (done = resolve));
      }
      const name = `honua_${++savepoints}`;
      try {
        db.exec(nested ? `SAVEPOINT ${name}` : "BEGIN IMMEDIATE");
        try {
          const out = await inTransaction.run(db, fn);
          db.exec(nested ? `RELEASE ${name}` : "COMMIT");
          return out;
        } catch (e) {
          if (db.inTransaction) db.exec(nested ? `ROLLBACK TO ${name}; RELEASE ${name}` : "ROLLBACK");
          throw e;
        }
      } finally {
        if (done) {
          gate.open = null;
          done();
        }
      }
    },
    async close() {
      db.close();
    },
  };
}

/** `?` placeholders become `$1..$n`. */
const numbered = (sql: string): string => {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
};

export function postgresSql(pool: pg.Pool): Sql {
  // Inside `exclusive`, the statements `fn` sends go to the transaction's connection (found through the async context).
  const inTransaction = new AsyncLocalStorage<pg.PoolClient>();
  return {
    dialect: "postgres",
    async query<T extends Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
      const res = await (inTransaction.getStore() ?? pool).query(numbered(sql), params);
      return res.rows as T[];
    },
    // One transaction holding a transaction-scoped advisory lock: what `fn` writes commits together or not at all,
    // and the lock goes with the transaction even when the connection is lost.
    async exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
      const outer = inTransaction.getStore();
      if (outer) {
        await outer.query("SELECT pg_advisory_xact_lock(hashtext($1))", [name]);
        return fn();
      }
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        try {
          await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [name]);
          const out = await inTransaction.run(client, fn);
          await client.query("COMMIT");
          return out;
        } catch (e) {
          await client.query("ROLLBACK").catch(() => undefined);
          throw e;
        }
      } finally {
        client.release();
      }
    },
    async close() {
      await pool.end();
    },
  };
}
