import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { converse } from "../src/conversation/index.js";
import { Engine } from "../src/engine.js";
import { SqlCallLog } from "../src/planner/calls.js";
import { CACHING_PLAN, tempHome, testEnv } from "./helpers.js";

const ADMIN = process.env.HONUA_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

describe("model-call records and thread notices on PostgreSQL (HONUA_AGENT_DATABASE_URL)", () => {
  const db = `honua_agent_model_test_${randomBytes(4).toString("hex")}`;
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

  it("two replicas create the tables at once, record calls, and say the rule-based notice once per thread", async () => {
    const env = testEnv(t.home, { HONUA_AGENT_DATABASE_URL: url });
    const [a, b] = await Promise.all([Engine.open({ env, cwd: t.home }), Engine.open({ env, cwd: t.home })]);
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
