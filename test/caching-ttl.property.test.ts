import { describe, expect, it } from "vitest";
import { Deployment } from "../src/config.js";
import { MemoryJournal } from "../src/core/journal.js";
import type { ConfigChange } from "../src/core/sections.js";
import type { MetricsSummary } from "../src/core/metrics.js";
import type { StepContext } from "../src/graph/step.js";
import { CODE_DEFAULTS, checkCacheOptions, readCacheOptions } from "../src/tools/cache/honua-options.js";
import { ConfigureCaching } from "../src/graph/workflows/add-caching-layer/steps/configure-caching.js";
import { DesignCachingStrategy } from "../src/graph/workflows/add-caching-layer/steps/design-caching-strategy.js";
import { OptimizeCacheSettings } from "../src/graph/workflows/add-caching-layer/steps/optimize-cache-settings.js";
import type { DeploymentAdapters } from "../src/tools/types.js";
import { seeded } from "./fixtures/random.js";


const KEYS = ["Cache__DefaultTtlSeconds", "Cache__ServiceTtlSeconds", "Cache__LayerTtlSeconds", "Cache__QueryTtlSeconds", "Cache__NegativeTtlSeconds"];

/** A config Honua starts with (the steps start from a running deployment), each TTL unset or set within its rules. */
function startingConfig(r: ReturnType<typeof seeded>): Record<string, string> {
  for (;;) {
    const cfg: Record<string, string> = { Cache__Enabled: "true" };
    for (const k of KEYS) if (r.next() < 0.6) cfg[r.next() < 0.3 ? k.toLowerCase() : k] = String(r.int(1, k.includes("Query") || k.includes("Negative") ? 3600 : 86_400));
    if (readCacheOptions(cfg).problems.length === 0 && checkCacheOptions(readCacheOptions(cfg).options).length === 0) return cfg;
  }
}

function harness(config: Record<string, string>) {
  const applied: ConfigChange[] = [];
  const adapters = {
    provider: "sandbox",
    clock: { now: () => new Date(0), sleep: async () => undefined },
    metrics: { samples: async () => [] },
    config: {
      read: async () => ({ ...config }),
      apply: async (changes: ConfigChange[]) => {
        for (const c of changes) {
          applied.push(c);
          if (c.after === null) delete config[c.key];
          else config[c.key] = c.after;
        }
      },
    },
    cache: { engines: ["redis"], provision: async () => { throw new Error("unused"); }, deprovision: async () => undefined },
    traffic: { share: async () => 0, setShare: async () => undefined },
    tiles: { popularTiles: async () => [], submitJob: async () => ({ jobId: "j", tilesProcessed: 0 }) },
    cost: { monthly: async () => ({}) },
  } satisfies DeploymentAdapters;
  const journal = new MemoryJournal("run-p");
  const ctx = (step: string): StepContext => ({
    run: "run-p", workflow: "add-caching-layer", deployment: "prod", deploymentConfig: Deployment.parse({ provider: "sandbox", approvers: ["oncall"] }),
    adapters, journal: journal.at(step), idempotencyKey: (s) => `run-p:${step}:0${s ? `:${s}` : ""}`, idempotencyKeyOf: (o) => `run-p:${o}:0`,
    progress: () => undefined, remember: async (_n, v) => v, attach: async (n) => n, stopRequested: async () => null,
  });
  return { config, applied, ctx };
}

const window = (hitRatio: number): MetricsSummary => ({ at: "", windowMinutes: 60, samples: 60, p95Ms: 100, errorRate: 0.001, hitRatio, requestsPerSecond: 100, originRequestsPerSecond: 20, monthlyCostUsd: null });
const honuaStarts = (cfg: Record<string, string>) => {
  // Under the shipped defaults and under the option class's own (an image without appsettings.json).
  for (const defaults of [undefined, CODE_DEFAULTS]) {
    const read = readCacheOptions(cfg, defaults);
    expect(read.problems).toEqual([]);
    expect(checkCacheOptions(read.options)).toEqual([]);
  }
};

describe("the design and optimize steps never write a cache config Honua refuses at startup", () => {
  it("for random TTL requests on random valid configs, design then optimize leave a config Honua starts with", async () => {
    const r = seeded(20261202);
    let refused = 0;
    for (let i = 0; i < 400; i++) {
      const h = harness(startingConfig(r));
      const ttl = r.next() < 0.15 ? r.int(86_401, 10_000_000) : r.next() < 0.5 ? r.int(1, 600) : r.int(1, 86_400);
      let strategy;
      try {
        strategy = (await DesignCachingStrategy.spec.run(h.ctx("DesignCachingStrategy"), { params: { cacheType: "redis", ttlSeconds: ttl }, baselineRps: 100, existing: [] }, null)).output;
      } catch (e) {
        // Refused before anything was written: the only other acceptable outcome.
        expect((e as Error).message, `case ${i}: ttl ${ttl}`).toMatch(/cannot be configured/);
        expect(h.applied).toEqual([]);
        refused++;
        continue;
      }
      // Written as the configure step writes it: each key where it already lives, in its spelling.
      await ConfigureCaching.spec.run(h.ctx("ConfigureCaching"), { desired: strategy.honuaConfig, endpoint: "redis:6379" }, null);
      honuaStarts(h.config);
      await OptimizeCacheSettings.spec.run(h.ctx("OptimizeCacheSettings"), { strategy, observed: window(r.next()) }, null);
      honuaStarts(h.config);
    }
    expect(refused).toBeGreaterThan(0); // the generator does reach TTLs Honua cannot take
    expect(refused).toBeLessThan(400);
  });
});
