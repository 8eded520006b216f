import { ensureTables } from "../planner/calls.js";
import type { Sql } from "../store/store.js";

/**
 * Things said once per thread (the rule-based notice), remembered in the agent's database so a restart or a
 * second replica does not say them again.
 */
export async function firstTime(sql: Sql, run: string, kind: string, at: string): Promise<boolean> {
  await ensureTables(sql, [`CREATE TABLE IF NOT EXISTS honua_conversation_notices (run TEXT NOT NULL, kind TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (run, kind))`]);
  const won = await sql.query(`INSERT INTO honua_conversation_notices (run, kind, at) VALUES (?, ?, ?) ON CONFLICT (run, kind) DO NOTHING RETURNING run`, [run, kind, at]);
  return won.length === 1;
}
