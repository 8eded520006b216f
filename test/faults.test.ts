import { describe, expect, it } from "vitest";
import type { RunEvent } from "../src/graph/events.js";
import { CACHING_PLAN, approveAll, engineSuite } from "./helpers.js";

describe("sandbox faults: the workflow rolls back, pauses or fails cleanly", () => {
  const suite = engineSuite();

  for (const fault of ["latency-regression", "error-spike"] as const) {
    it(`${fault}: automatic rollback at the first stage, without waiting for anyone`, async () => {
      const events: RunEvent[] = [];
      const engine = await suite.open({ HONUA_SANDBOX_FAULTS: fault }, events);
      const before = engine.sandbox();
      let s = await engine.start(CACHING_PLAN, "carol", "add redis caching to prod");
      const cfgBefore = before.config("prod");
      s = await engine.decide(s.run, "alice", "approve"); // provision
      expect(s.pending?.gate.change.traffic).toEqual({ from: 0, to: 10 });
      s = await engine.decide(s.run, "alice", "approve"); // 10% -> degraded -> rollback
      // no human decision was needed for the rollback; what it left behind waits behind a delete gate
      expect(s.pending).toMatchObject({ step: "CleanupAfterRollback", kind: "delete" });
      expect(events.find((e) => e.type === "rollback")).toMatchObject({ reason: fault === "error-spike" ? expect.stringMatching(/error rate/) : expect.stringMatching(/p95/) });
      expect(engine.sandbox().share("prod", "cache")).toBe(0);
      expect(engine.sandbox().config("prod")).toEqual(cfgBefore);
      s = await engine.decide(s.run, "bob", "reject", { comment: "keep it for the postmortem" });
      expect(s.status).toBe("rolled-back");
      expect(engine.sandbox().activeResources("prod")).toHaveLength(1);
      expect(await engine.store.lockHolder("prod")).toBeUndefined();
      const tr = await engine.transcript(s.run);
      expect(tr.steps.map((x) => x.name)).toContain("Rollback");
      expect(tr.steps.map((x) => x.name)).not.toContain("MonitorCachePerformance");
    });
  }

  it("no-data: pauses at an inconclusive gate, never passes; reject rolls back", async () => {
    const engine = await suite.open({ HONUA_SANDBOX_FAULTS: "no-data" });
    let s = await engine.start(CACHING_PLAN, "carol", "add redis caching to prod");
    s = await engine.decide(s.run, "alice", "approve");
    s = await engine.decide(s.run, "alice", "approve"); // 10%
    expect(s.status).toBe("waiting");
    expect(s.pending).toMatchObject({ step: "EnableCachingGradually", kind: "inconclusive" });
    expect(s.pending?.gate.why).toMatch(/0 samples/);
    expect(engine.sandbox().share("prod", "cache")).toBe(10); // nothing moved on by itself
    s = await engine.decide(s.run, "bob", "reject");
    expect(s.pending?.step).toBe("CleanupAfterRollback");
    expect(engine.sandbox().share("prod", "cache")).toBe(0);
  });

  it("no-data: a human may continue; the next stage is still gated", async () => {
    const engine = await suite.open({ HONUA_SANDBOX_FAULTS: "no-data" });
    let s = await engine.start(CACHING_PLAN, "carol", "add redis caching to prod");
    s = await engine.decide(s.run, "alice", "approve");
    s = await engine.decide(s.run, "alice", "approve");
    expect(s.pending?.kind).toBe("inconclusive");
    s = await engine.decide(s.run, "alice", "approve");
    expect(s.pending).toMatchObject({ step: "EnableCachingGradually", kind: "traffic" });
    expect(s.pending?.gate.change.traffic).toEqual({ from: 10, to: 50 });
  });

  it("provision-failure: fails cleanly, nothing configured, lock released", async () => {
    const engine = await suite.open({ HONUA_SANDBOX_FAULTS: "provision-failure" });
    let s = await engine.start(CACHING_PLAN, "carol", "add redis caching to prod");
    const cfg = engine.sandbox().config("prod");
    s = await approveAll(engine, s);
    expect(s.status).toBe("failed");
    expect(s.outcome).toMatch(/InsufficientCacheClusterCapacity/);
    expect(engine.sandbox().config("prod")).toEqual(cfg);
    expect(engine.sandbox().activeResources("prod")).toEqual([]);
    expect(await engine.store.lockHolder("prod")).toBeUndefined();
  });

  it("an unknown fault name is refused", async () => {
    await expect(suite.open({ HONUA_SANDBOX_FAULTS: "meteor" })).rejects.toThrow(/unknown fault "meteor"/);
  });
});
