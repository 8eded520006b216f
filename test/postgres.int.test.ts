import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../src/engine.js";
import { CACHING_PLAN, tempHome, testEnv } from "./helpers.js";

const ADMIN = process.env.HONUA_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

describe("PostgreSQL checkpoints, locks and decisions (HONUA_AGENT_DATABASE_URL)", () => {
  const db = `honua_agent_test_${randomBytes(4).toString("hex")}`;
  let url = "";
  let t: ReturnType<typeof tempHome>;
  beforeAll(async () => {
    t = tempHome();
    const admin = new pg.Client({ connectionString: ADMIN });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${db}`);
    await admin.end();
    const u = new URL(ADMIN);
    u.pathname = `/${db}`;
    url = u.toString();
  });
  afterAll(async () => {
    const admin = new pg.Client({ connectionString: ADMIN });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin.end();
    t.cleanup();
  });

  it("sets up once from several processes' worth of engines at once, then runs, decides once and resumes across engines", async () => {
    const env = { ...testEnv(t.home), HONUA_AGENT_DATABASE_URL: url };
    const engines = await Promise.all([Engine.open({ env }), Engine.open({ env }), Engine.open({ env })]);
    try {
      const [a, b, c] = engines as [Engine, Engine, Engine];
      const s = await a.start(CACHING_PLAN, "carol", "add redis caching to prod");
      await expect(b.start(CACHING_PLAN, "dave", "again")).rejects.toThrow(/in progress/);
      const both = await Promise.allSettled([
        b.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash }),
        c.decide(s.run, "bob", "approve", { planHash: s.pending!.planHash }),
      ]);
      expect(both.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      let cur = await a.summary(s.run);
      expect(cur.pending?.step).toBe("EnableCachingGradually");
      while (cur.pending) cur = await c.decide(cur.run, "alice", "approve");
      expect(cur.status).toBe("done");
      expect(a.sandbox().count("prod", "provision-cache")).toBe(1);
      const tr = await b.transcript(s.run);
      expect(tr.decisions).toHaveLength(4);
      expect(await a.store.lockHolder("prod")).toBeUndefined();
    } finally {
      for (const e of engines) await e.close();
    }
  });
});
