import { AsyncLocalStorage } from "node:async_hooks";
import Database from "better-sqlite3";
import type pg from "pg";
import type { Sql } from "./store.js";

export function sqliteSql(path: string): Sql {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("busy_timeout = 10000");
  // Prepared once per distinct SQL text: the texts are constants, and preparing on every query showed in profiles.
  const statements = new Map<string, Database.Statement>();
  const prepared = (sql: string): Database.Statement => {
    let stmt = statements.get(sql);
    if (!stmt) {
      stmt = db.prepare(sql);
      if (statements.size < 1000) statements.set(sql, stmt);
    }
    return stmt;
  };
  let savepoints = 0;
  return {
    dialect: "sqlite",
    async query<T extends Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
      const stmt = prepared(sql);
      if (stmt.reader) return stmt.all(...params) as T[];
      stmt.run(...params);
      return [];
    },
    // better-sqlite3 is synchronous and SQLite serialises writers; an immediate transaction is the cross-process lock,
    // and everything `fn` writes lands in one commit or not at all. Inside another transaction it is a savepoint.
    async exclusive<T>(_name: string, fn: () => Promise<T>): Promise<T> {
      const nested = db.inTransaction;
      const name = `honua_${++savepoints}`;
      db.exec(nested ? `SAVEPOINT ${name}` : "BEGIN IMMEDIATE");
      try {
        const out = await fn();
        db.exec(nested ? `RELEASE ${name}` : "COMMIT");
        return out;
      } catch (e) {
        if (db.inTransaction) db.exec(nested ? `ROLLBACK TO ${name}; RELEASE ${name}` : "ROLLBACK");
        throw e;
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
