import Database from "better-sqlite3";
import pg from "pg";
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
  return {
    dialect: "sqlite",
    async query<T extends Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
      const stmt = prepared(sql);
      if (stmt.reader) return stmt.all(...params) as T[];
      stmt.run(...params);
      return [];
    },
    // better-sqlite3 is synchronous and SQLite serialises writers; an immediate transaction is the cross-process lock.
    async exclusive<T>(_name: string, fn: () => Promise<T>): Promise<T> {
      db.exec("BEGIN IMMEDIATE");
      try {
        const out = await fn();
        db.exec("COMMIT");
        return out;
      } catch (e) {
        db.exec("ROLLBACK");
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
  return {
    dialect: "postgres",
    async query<T extends Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
      const res = await pool.query(numbered(sql), params);
      return res.rows as T[];
    },
    async exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
      const client = await pool.connect();
      try {
        await client.query("SELECT pg_advisory_lock(hashtext($1))", [name]);
        try {
          return await fn();
        } finally {
          await client.query("SELECT pg_advisory_unlock(hashtext($1))", [name]);
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
