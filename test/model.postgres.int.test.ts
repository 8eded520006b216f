import { describe, expect, it } from "vitest";
import { converse } from "../src/conversation/index.js";
import { Engine } from "../src/engine.js";
import { SqlCallLog } from "../src/planner/calls.js";
import { CACHING_PLAN, postgresTestDatabase, testEnv } from "./helpers.js";

describe("model-call records and thread notices on PostgreSQL (HONUA_AGENT_DATABASE_URL)", () => {
  const pgdb = postgresTestDatabase("honua_agent_model_test");

  it("two replicas create the tables at once, record calls, and say the rule-based notice once per thread", async () => {
    const env = testEnv(pgdb.home, { HONUA_AGENT_DATABASE_URL: pgdb.url });
    const [a, b] = await Promise.all([Engine.open({ env, cwd: pgdb.home }), Engine.open({ env, cwd: pgdb.home })]);
    try {
      const [logA, logB] = await Promise.all([SqlCallLog.open(a.store.sql), SqlCallLog.open(b.store.sql)]);
      const s = await a.start(CACHING_PLAN, "carol", "add redis caching to prod");
      const rec = { run: null, task: "plan" as const, model: "m", promptVersion: "plan@1", inputTokens: 10, outputTokens: 5, totalTokens: 15, latencyMs: 12, outcome: "ok" as const, detail: null, at: new Date().toISOString() };
      await logA.record({ ...rec, id: "mc-a" });
      await logB.record({ ...rec, id: "mc-b", outcome: "invalid", detail: "rollout steps must increase" });
      await logA.attach(["mc-a", "mc-b"], s.run);
      expect((await logB.forRun(s.run)).map((r) => [r.id, r.outcome, r.totalTokens])).toEqual([["mc-a", "ok", 15], ["mc-b", "invalid", 15]]);
      const ask = (e: Engine) => converse(e, { run: s.run, user: "carol", groups: [], text: "status" }, { model: { offline: true } });
      const [first, second] = [await ask(a), await ask(b)];
      expect(first.text).toMatch(/rule-based/);
      expect(second.text).not.toMatch(/rule-based/);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
