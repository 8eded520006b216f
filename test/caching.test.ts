import { describe, expect, it } from "vitest";
import type { RunEvent } from "../src/graph/events.js";
import { CACHING_PLAN, engineSuite } from "./helpers.js";

describe("add-caching-layer on the sandbox", () => {
  const suite = engineSuite();

  it("runs all ten steps through provision and three traffic gates, and reports before/after", async () => {
    const events: RunEvent[] = [];
    const engine = await suite.open({}, events);
    const first = await engine.start(CACHING_PLAN, "carol", "add redis caching to prod");
    expect(first.status).toBe("waiting");
    expect(first.pending).toMatchObject({ step: "ProvisionCacheInfrastructure", kind: "provision" });
    expect(first.pending?.gate.change.resources[0]).toMatchObject({ kind: "redis", action: "create" });
    const world = engine.sandbox();
    expect(world.count("prod", "provision-cache")).toBe(0);

    const gatesSeen: string[] = [];
    let s = first;
    while (s.pending) {
      gatesSeen.push(`${s.pending.step}:${s.pending.kind}:${s.pending.gate.change.traffic?.to ?? ""}`);
      s = await engine.decide(s.run, "alice", "approve", { planHash: s.pending.planHash });
    }
    expect(s.status).toBe("done");
    expect(gatesSeen).toEqual([
      "ProvisionCacheInfrastructure:provision:",
      "EnableCachingGradually:traffic:10",
      "EnableCachingGradually:traffic:50",
      "EnableCachingGradually:traffic:100",
    ]);
    const tr = await engine.transcript(s.run);
    expect([...new Set(tr.steps.map((x) => x.name))]).toEqual([
      "AnalyzeCurrentPerformance", "DesignCachingStrategy", "EstimateCostImpact", "ProvisionCacheInfrastructure",
      "ConfigureCaching", "WarmCache", "EnableCachingGradually", "MonitorCachePerformance", "OptimizeCacheSettings",
      "GeneratePerformanceReport",
    ]);
    expect(tr.decisions.map((d) => d.by)).toEqual(["alice", "alice", "alice", "alice"]);
    expect(tr.metrics.before!.p95Ms!).toBeGreaterThan(tr.metrics.after!.p95Ms!);
    expect(tr.metrics.after!.originRequestsPerSecond!).toBeLessThan(tr.metrics.before!.originRequestsPerSecond! / 2);
    expect(tr.metrics.after!.samples).toBe(60);
    const cfg = world.config("prod");
    expect(cfg.ConnectionStrings__Redis).toMatch(/^redis-prod-.*:6379/);
    expect(cfg.ConnectionStrings__Redis).not.toMatch(/password=[^r]/); // a reference, never a secret value
    expect(cfg.Cache__DefaultTtlSeconds).toBe("3600");
    expect(world.share("prod", "cache")).toBe(100);
    expect(world.count("prod", "provision-cache")).toBe(1);
    expect(await engine.store.lockHolder("prod")).toBeUndefined();
    expect(events.filter((e) => e.type === "rollback")).toEqual([]);
  });

  it("honours requested cache type, ttl and rollout steps", async () => {
    const engine = await suite.open();
    let s = await engine.start({ workflow: "add-caching-layer", deployment: "staging", params: { cacheType: "varnish", ttlSeconds: 600, rolloutSteps: [25, 100] } }, "carol", "varnish");
    const traffic: number[] = [];
    while (s.pending) {
      if (s.pending.gate.change.traffic) traffic.push(s.pending.gate.change.traffic.to);
      s = await engine.decide(s.run, "bob", "approve");
    }
    expect(s.status).toBe("done");
    expect(traffic).toEqual([25, 100]);
    const tr = await engine.transcript(s.run);
    const configured = tr.steps.find((x) => x.name === "ConfigureCaching")!.output as { changes: { key: string; after: string }[] };
    expect(configured.changes).toContainEqual({ key: "TileOptions__CacheMaxAge", before: null, after: "600" });
    const optimized = tr.steps.find((x) => x.name === "OptimizeCacheSettings")!.output as { changes: { key: string; after: string }[] };
    expect(engine.sandbox().config("staging").TileOptions__CacheMaxAge).toBe(optimized.changes[0]?.after ?? "600");
  });

  it("a reject at a traffic gate restores config and traffic, and leaves the cache behind a delete gate", async () => {
    const engine = await suite.open();
    let s = await engine.start(CACHING_PLAN, "carol", "add redis caching to prod");
    const before = engine.sandbox().config("prod");
    s = await engine.decide(s.run, "alice", "approve"); // provision
    s = await engine.decide(s.run, "alice", "approve"); // 10%
    expect(engine.sandbox().share("prod", "cache")).toBe(10);
    s = await engine.decide(s.run, "bob", "reject", { comment: "not during the freeze" }); // 50%
    expect(s.pending).toMatchObject({ step: "CleanupAfterRollback", kind: "delete" });
    expect(engine.sandbox().share("prod", "cache")).toBe(0);
    expect(engine.sandbox().config("prod")).toEqual(before);
    // two-person rule: the requester may not approve deleting on prod
    await expect(engine.decide(s.run, "carol", "approve")).rejects.toThrow(/may not decide|two-person/);
    s = await engine.decide(s.run, "alice", "approve");
    expect(s.status).toBe("rejected");
    expect(engine.sandbox().activeResources("prod")).toEqual([]);
    expect(engine.sandbox().count("prod", "deprovision-cache")).toBe(1);
  });
});
