import { describe, expect, it } from "vitest";
import { Engine } from "../src/engine.js";
import { CACHING_PLAN, postgresTestDatabase, testEnv } from "./helpers.js";

describe("PostgreSQL checkpoints, locks and decisions (HONUA_AGENT_DATABASE_URL)", () => {
  const pgdb = postgresTestDatabase("honua_agent_test");

  it("sets up once from several processes' worth of engines at once, then runs, decides once and resumes across engines", async () => {
    const env = { ...testEnv(pgdb.home), HONUA_AGENT_DATABASE_URL: pgdb.url };
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
