import { afterAll, describe, expect, it } from "vitest";
import pg from "pg";
import { postgresSql } from "../src/store/sql.js";
import { AgentStore } from "../src/store/store.js";
import { postgresTestDatabase } from "./helpers.js";
import { KillpointRig, killEach, killPoints } from "./fixtures/killpoints.js";

const CONCURRENCY = Number(process.env.HONUA_KILL_CONCURRENCY ?? 2);
/** Every N costs one process; on PostgreSQL the default suite tries every fourth, from the second: even points the SQLite suite leaves (HONUA_KILL_ALL=1: every one). */
const STRIDE = 4;

describe("SIGKILL just before each durable statement of a sandbox caching run, then restart (PostgreSQL)", () => {
  const rig = new KillpointRig("postgres");
  afterAll(() => rig.cleanup());

  it("each kill point tried, across the run, approve and resume processes, resumes to done with each side effect once", async () => {
    const started = Date.now();
    const b = await rig.prepare();
    expect(b.final).toBe("done");
    expect(b.counts["provision-cache"]).toBe(1);
    expect(b.counts["traffic-share"]).toBe(3);
    expect(b.decisions).toHaveLength(4);

    const ns = killPoints(b.total, STRIDE, 2);
    const r = await killEach(rig, ns, CONCURRENCY);
    console.log(`kill points (postgres): ${ns.length} of ${b.total} [${b.perProcess.join(", ")} per process], ${ns.length - r.failures.length} finished; ` +
      `states left: ${JSON.stringify(r.shapes)}; ${r.seconds}s for the kills, ${Math.round((Date.now() - started) / 1000)}s in all`);
    expect(r.failures).toEqual([]);
    expect(r.shapes["saved-writes"]).toBeGreaterThan(0);
  }, 900_000);
});

describe("PostgreSQL store setup is one transaction", () => {
  const pgdb = postgresTestDatabase("honua_agent_setup");

  it("a setup that fails part-way leaves no table behind, and the next one builds them all", async () => {
    const pool = new pg.Pool({ connectionString: pgdb.url, max: 2 });
    const sql = postgresSql(pool);
    try {
      const tables = async () => (await sql.query<{ t: string }>(`SELECT table_name AS t FROM information_schema.tables WHERE table_name LIKE 'honua_%'`)).map((r) => r.t);
      let sent = 0;
      const failing = { ...sql, query: async <T extends Record<string, unknown>>(text: string, params?: unknown[]) => {
        if (/^\s*CREATE TABLE/i.test(text) && ++sent === 4) throw new Error("connection lost");
        return sql.query<T>(text, params);
      } };
      await expect(new AgentStore(failing).setup()).rejects.toThrow(/connection lost/);
      expect(sent).toBe(4);
      expect(await tables()).toEqual([]);
      await new AgentStore(sql).setup();
      expect((await tables()).sort()).toEqual(["honua_audit", "honua_controls", "honua_cursors", "honua_decisions", "honua_evidence", "honua_gates", "honua_journal", "honua_locks", "honua_memo", "honua_operator_actions", "honua_records", "honua_runs"]);
    } finally {
      await pool.end();
    }
  });
});
