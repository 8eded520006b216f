import { describe, expect, it } from "vitest";
import { Deployment } from "../src/config.js";
import { MemoryJournal } from "../src/core/journal.js";
import type { ConfigChange } from "../src/core/sections.js";
import { RunView, type StepContext } from "../src/graph/step.js";
import { rollbackCaching } from "../src/graph/workflows/add-caching-layer/rollback.js";
import type { DeploymentAdapters } from "../src/tools/types.js";

describe("rollbackCaching", () => {
  it("restores the config even when the traffic switch fails, then reports the rollback as incomplete", async () => {
    const config: Record<string, string> = { Cache__Enabled: "true", ConnectionStrings__Redis: "redis-1:6379" };
    const adapters = {
      traffic: {
        share: async () => 50,
        setShare: async () => {
          throw new Error("nginx -s reload: permission denied");
        },
      },
      config: {
        read: async () => ({ ...config }),
        apply: async (changes: ConfigChange[]) => {
          for (const c of changes) (c.after === null ? delete config[c.key] : (config[c.key] = c.after));
        },
      },
    } as unknown as DeploymentAdapters;
    // What the run did, as its steps journalled it: Redis configured, then 50% of traffic moved.
    const journal = new MemoryJournal("run-1");
    await journal.at("ConfigureCaching").intend(null, [{ kind: "config", key: "ConnectionStrings__Redis", before: null, after: "redis-1:6379" }]);
    await journal.at("ConfigureCaching").done(null);
    await journal.at("EnableCachingGradually", 1).intend(null, [{ kind: "share", feature: "cache", before: 0, after: 50 }]);
    await journal.at("EnableCachingGradually", 1).done(null);
    const ctx = {
      run: "run-1", workflow: "add-caching-layer", deployment: "prod", deploymentConfig: Deployment.parse({ provider: "sandbox", approvers: ["oncall"] }),
      journal: journal.at("Rollback"),
      adapters, idempotencyKey: (s?: string) => `run-1:Rollback:0:${s ?? ""}`, idempotencyKeyOf: (step: string, stage?: number) => `run-1:${step}:${stage ?? 0}`, progress: () => {}, remember: async (_n: string, v: string) => v,
      attach: async (n: string) => n, stopRequested: async () => null,
    } satisfies StepContext;
    const view = new RunView({
      run: "run-1", workflow: "add-caching-layer", deployment: "prod", requestedBy: "carol", request: "x", params: {},
      steps: [{ name: "ConfigureCaching", stage: null, status: "done", startedAt: "", endedAt: "", input: {}, output: { changes: [{ key: "ConnectionStrings__Redis", before: null, after: "redis-1:6379" }], diff: "", fileDiff: null } }],
      decisions: [], gate: null, next: { to: "step", index: 0, stage: 0 }, status: "running", ending: null, outcome: null, metrics: { before: null, after: null },
    });
    await expect(rollbackCaching(ctx, view)).rejects.toThrow(/rollback incomplete \(traffic share -> 0%: nginx -s reload: permission denied\); restored: ConnectionStrings__Redis -> \(unset\)/);
    expect(config).toEqual({ Cache__Enabled: "true" });
  });

  it("offers for deletion what a provision that failed half way created", async () => {
    const asked: string[] = [];
    const adapters = {
      traffic: { share: async () => 0, setShare: async () => undefined },
      config: { read: async () => ({}), apply: async () => undefined },
      cache: {
        provision: async () => { throw new Error("unused"); },
        deprovision: async () => undefined,
        provisioned: async (key: string) => (asked.push(key), { id: "honua-0123", description: "ElastiCache replication group honua-0123 (creating)" }),
      },
    } as unknown as DeploymentAdapters;
    // The provision journalled its intent, then died before it could say what it created.
    const journal = new MemoryJournal("run-2");
    await journal.at("ProvisionCacheInfrastructure").intend(null, [{ kind: "resource", capability: "cache", id: null, resourceKind: "redis", description: "redis cache.t4g.medium", created: true }]);
    const ctx = {
      run: "run-2", workflow: "add-caching-layer", deployment: "prod", deploymentConfig: Deployment.parse({ provider: "sandbox", approvers: ["oncall"] }),
      journal: journal.at("Rollback"),
      adapters, idempotencyKey: (s?: string) => `run-2:Rollback:0:${s ?? ""}`, idempotencyKeyOf: (step: string, stage?: number) => `run-2:${step}:${stage ?? 0}`,
      progress: () => {}, remember: async (_n: string, v: string) => v, attach: async (n: string) => n, stopRequested: async () => null,
    } satisfies StepContext;
    const design = { cacheType: "redis", reason: "r", ttlSeconds: 3600, ttlReason: "t", evictionPolicy: "allkeys-lru", keyPrefix: "honua:", nodeType: "cache.t4g.medium", memoryGb: 2, rolloutSteps: [10, 50, 100], honuaConfig: {} };
    const view = new RunView({
      run: "run-2", workflow: "add-caching-layer", deployment: "prod", requestedBy: "carol", request: "x", params: {},
      steps: [
        { name: "DesignCachingStrategy", stage: null, status: "done", startedAt: "", endedAt: "", input: {}, output: design },
        { name: "ProvisionCacheInfrastructure", stage: null, status: "failed", startedAt: "", endedAt: "", input: null, output: null, error: "not available within 900 s" },
      ],
      decisions: [], gate: null, next: { to: "step", index: 0, stage: 0 }, status: "running", ending: null, outcome: null, metrics: { before: null, after: null },
    });
    const res = await rollbackCaching(ctx, view);
    expect(asked).toEqual(["run-2:ProvisionCacheInfrastructure:0"]);
    expect(res.leftovers).toEqual([{ id: "honua-0123", kind: "redis", description: "ElastiCache replication group honua-0123 (creating) (created by a provision that did not finish)" }]);
  });
});
