import { z } from "zod";
import { AgentError } from "../../errors.js";
import { MetricsSummary, ConfigChange } from "../../graph/state.js";
import { defineStep, type RunView, type StepContext } from "../../graph/step.js";
import { CachingParams } from "../../planner/plan.js";
import { PRICES, PRICE_SOURCE, monthlyRequests, originMonthlyUsd, pickNode, priceOf } from "../cost/prices.js";
import { diffConfig, inverse, renderDiff } from "../config/diff.js";
import { settingValue } from "../config/keys.js";
import { snapshot, watch } from "../metrics/observe.js";
import type { CacheSpec } from "../types.js";

const CacheType = z.enum(["redis", "varnish", "cloudfront"]);
const DEFAULT_ROLLOUT = [10, 50, 100];
const AVG_TILE_KB = 28;

const params = (view: RunView) => CachingParams.parse(view.params);
const pct = (x: number | null) => (x === null ? "n/a" : `${(x * 100).toFixed(1)}%`);
const usd = (x: number) => `$${x.toFixed(2)}`;

export const AnalyzeCurrentPerformance = defineStep({
  name: "AnalyzeCurrentPerformance",
  description: "Measure p95 latency, error rate, cache hit ratio, origin load and monthly cost over the last hour",
  input: z.object({ deployment: z.string(), lookbackMinutes: z.number().positive() }),
  output: z.object({
    baseline: MetricsSummary,
    costBreakdown: z.record(z.string(), z.number()),
    existingRedis: z.string().nullable(),
    topLayers: z.array(z.object({ layerId: z.string(), requestsPerHour: z.number() })),
  }),
  prepare: (view) => ({ deployment: view.state.deployment, lookbackMinutes: 60 }),
  async run(ctx, input) {
    const m = ctx.deploymentConfig.monitoring;
    const baseline = await snapshot(ctx.adapters, input.lookbackMinutes, m.sampleEveryMinutes);
    if (baseline.samples < m.minSamples || baseline.p95Ms === null) {
      throw new AgentError("failed", `no baseline: ${baseline.samples} metric samples in the last ${input.lookbackMinutes} min (need ${m.minSamples}); a rollout cannot be judged without one. Check the metrics source.`);
    }
    const cfg = await ctx.adapters.config.read();
    const tiles = await ctx.adapters.tiles.popularTiles(50);
    const byLayer = new Map<string, number>();
    for (const t of tiles) byLayer.set(t.layerId, (byLayer.get(t.layerId) ?? 0) + t.requestsPerHour);
    ctx.progress(`baseline p95 ${baseline.p95Ms} ms, errors ${pct(baseline.errorRate)}, hit ratio ${pct(baseline.hitRatio)}, origin ${baseline.originRequestsPerSecond} req/s`);
    return {
      output: {
        baseline,
        costBreakdown: await ctx.adapters.cost.monthly(),
        existingRedis: settingValue(cfg, "ConnectionStrings__Redis") ?? null, // in any spelling: Helm keeps it as ConnectionStrings__redis
        topLayers: [...byLayer.entries()].map(([layerId, requestsPerHour]) => ({ layerId, requestsPerHour })).sort((a, b) => b.requestsPerHour - a.requestsPerHour),
      },
      metrics: { before: baseline },
    };
  },
});

const Strategy = z.object({
  cacheType: CacheType,
  reason: z.string(),
  ttlSeconds: z.number().int().positive(),
  ttlReason: z.string(),
  evictionPolicy: z.string(),
  keyPrefix: z.string(),
  nodeType: z.string(),
  memoryGb: z.number(),
  rolloutSteps: z.array(z.number().int().min(1).max(100)),
  /** Honua config keys this strategy sets; `{endpoint}` is filled in once the cache exists. */
  honuaConfig: z.record(z.string(), z.string()),
});

export const DesignCachingStrategy = defineStep({
  name: "DesignCachingStrategy",
  description: "Choose cache type, TTLs, eviction, key prefix and size; map them to Honua config keys",
  input: z.object({ params: CachingParams, baselineRps: z.number(), existingRedis: z.string().nullable() }),
  output: Strategy,
  prepare: (view) => {
    const a = view.output(AnalyzeCurrentPerformance);
    return { params: params(view), baselineRps: a.baseline.requestsPerSecond ?? 0, existingRedis: a.existingRedis };
  },
  async run(_ctx, { params: p, baselineRps, existingRedis }) {
    if (existingRedis && (p.cacheType ?? "redis") === "redis") {
      throw new AgentError("failed", `the deployment already uses Redis (ConnectionStrings__Redis is set); nothing to add`);
    }
    const cacheType = p.cacheType ?? "redis";
    const reason = p.cacheType
      ? `${p.cacheType} was requested`
      : "Redis: Honua caches tiles, layers and queries in Redis natively (ConnectionStrings__Redis), it is required for multi-node, and it needs no HTTP cache-header changes";
    const ttlSeconds = p.ttlSeconds ?? 3600;
    const ttlReason = p.ttlSeconds ? "requested" : "tiles change rarely; 1 h keeps the hit ratio high while bounding staleness (Honua default 300 s)";
    // Distinct tiles per day ~0.5% of requests; 30% headroom for keys and fragmentation.
    const memoryGb = Number(((baselineRps * 86_400 * 0.005 * AVG_TILE_KB * 1.3) / 1e6).toFixed(2));
    const node = cacheType === "cloudfront" ? { type: "cloudfront-distribution", memoryGb: 0 } : pickNode(PRICES[cacheType], memoryGb);
    const honuaConfig: Record<string, string> = cacheType === "redis"
      ? {
          ConnectionStrings__Redis: "{endpoint}",
          Cache__Enabled: "true",
          Cache__EnableFallback: "true",
          Cache__DefaultTtlSeconds: String(ttlSeconds),
          Cache__LayerTtlSeconds: String(ttlSeconds),
          Cache__ServiceTtlSeconds: String(Math.min(ttlSeconds, 900)),
          Cache__KeyPrefix: "honua:",
        }
      : { TileOptions__CacheMaxAge: String(ttlSeconds), Cache__ResponseCachingEnabled: "true" };
    return {
      output: {
        cacheType, reason, ttlSeconds, ttlReason, evictionPolicy: cacheType === "redis" ? "allkeys-lru" : "lru",
        keyPrefix: "honua:", nodeType: node.type, memoryGb, rolloutSteps: p.rolloutSteps ?? DEFAULT_ROLLOUT, honuaConfig,
      },
      reason,
    };
  },
});

export const EstimateCostImpact = defineStep({
  name: "EstimateCostImpact",
  description: "Added cache cost against savings from fewer origin requests, from the price table",
  input: z.object({ strategy: Strategy, baseline: MetricsSummary }),
  output: z.object({
    addedMonthlyUsd: z.number(), originSavingsMonthlyUsd: z.number(), netMonthlyUsd: z.number(),
    expectedHitRatio: z.number(), assumptions: z.array(z.string()), priceSource: z.string(),
  }),
  prepare: (view) => ({ strategy: view.output(DesignCachingStrategy), baseline: view.output(AnalyzeCurrentPerformance).baseline }),
  async run(_ctx, { strategy, baseline }) {
    const expectedHitRatio = strategy.ttlSeconds >= 3600 ? 0.85 : strategy.ttlSeconds >= 600 ? 0.8 : 0.7;
    const rps = baseline.requestsPerSecond ?? 0;
    const origin = baseline.originRequestsPerSecond ?? rps;
    const added = strategy.cacheType === "cloudfront"
      ? (monthlyRequests(rps) / 1e6) * PRICES.cloudfront.perMillionRequests
      : priceOf(strategy.cacheType, strategy.nodeType);
    const savings = originMonthlyUsd(origin) - originMonthlyUsd(origin * (1 - expectedHitRatio));
    const r2 = (x: number) => Number(x.toFixed(2));
    return {
      output: {
        addedMonthlyUsd: r2(added), originSavingsMonthlyUsd: r2(savings), netMonthlyUsd: r2(added - savings), expectedHitRatio,
        assumptions: [
          `expected hit ratio ${pct(expectedHitRatio)} at TTL ${strategy.ttlSeconds} s`,
          `${rps} req/s now, ${origin} reaching the origin`,
          `origin cost ${usd(PRICES.originPerMillionRequests)} per million requests`,
        ],
        priceSource: PRICE_SOURCE,
      },
      reason: `+${usd(added)}/month for ${strategy.nodeType}, -${usd(savings)}/month origin: net ${usd(added - savings)}/month`,
    };
  },
});

const Resource = z.object({ id: z.string(), engine: CacheType, nodeType: z.string(), endpoint: z.string(), createdAt: z.string() });

function cacheSpecOf(view: RunView): CacheSpec & { ttlSeconds: number } {
  const s = view.output(DesignCachingStrategy);
  return { engine: s.cacheType, nodeType: s.nodeType, memoryGb: s.memoryGb, evictionPolicy: s.evictionPolicy, ttlSeconds: s.ttlSeconds };
}

export const ProvisionCacheInfrastructure = defineStep({
  name: "ProvisionCacheInfrastructure",
  description: "Create the cache (Redis node, Varnish host or CDN distribution)",
  input: z.object({ engine: CacheType, nodeType: z.string(), memoryGb: z.number(), evictionPolicy: z.string(), ttlSeconds: z.number().int().positive() }),
  output: z.object({ resource: Resource }),
  prepare: (view) => cacheSpecOf(view),
  async run(ctx, spec) {
    const resource = await ctx.adapters.cache.provision(spec, ctx.idempotencyKey());
    ctx.progress(`created ${resource.engine} ${resource.nodeType} (${resource.id})`);
    return { output: { resource } };
  },
  gate: {
    kind: "provision",
    async describe(ctx, view) {
      const s = view.output(DesignCachingStrategy);
      const cost = view.output(EstimateCostImpact);
      const spec = cacheSpecOf(view);
      const intent = ctx.adapters.cache.intent?.(spec) ?? null;
      // What ConfigureCaching will write next, so the approver sees the config change with the resource.
      const config = diffConfig(await ctx.adapters.config.read(), s.honuaConfig);
      return {
        action: intent?.action ?? `Create a ${s.cacheType} cache ${s.nodeType} (${s.memoryGb} GB needed, eviction ${s.evictionPolicy}) for ${ctx.deployment}`,
        why: `${s.reason}. Expected hit ratio ${pct(cost.expectedHitRatio)}; net ${usd(cost.netMonthlyUsd)}/month (+${usd(cost.addedMonthlyUsd)} cache, -${usd(cost.originSavingsMonthlyUsd)} origin).`,
        risk: intent && !intent.creates
          ? "Low: nothing is created; the existing cache is checked and prepared. No traffic reaches it before the traffic gates."
          : "Low: a new, unused resource that is billed from now on. No traffic reaches it before the traffic gates.",
        change: {
          config,
          resources: [{ kind: s.cacheType, nodeType: s.nodeType, memoryGb: s.memoryGb, monthlyUsd: cost.addedMonthlyUsd, action: intent && !intent.creates ? "adopt" : "create" }],
        },
      };
    },
  },
});

export const ConfigureCaching = defineStep({
  name: "ConfigureCaching",
  description: "Point Honua at the cache and set TTLs (config keys), recording the diff for rollback",
  input: z.object({ desired: z.record(z.string(), z.string()), endpoint: z.string() }),
  output: z.object({ changes: z.array(ConfigChange), diff: z.string(), fileDiff: z.string().nullable() }),
  prepare: (view) => ({ desired: view.output(DesignCachingStrategy).honuaConfig, endpoint: view.output(ProvisionCacheInfrastructure).resource.endpoint }),
  async run(ctx, { desired, endpoint }) {
    const filled = Object.fromEntries(Object.entries(desired).map(([k, v]) => [k, v.replace("{endpoint}", endpoint)]));
    // Read once, even across a crash: a replay that re-read the already-applied file would find nothing to
    // change, and the rollback would then have nothing to restore.
    const current = JSON.parse(await ctx.remember("config-before", JSON.stringify(await ctx.adapters.config.read()))) as Record<string, string>;
    const changes = diffConfig(current, filled);
    const fileDiff = (await ctx.adapters.config.preview?.(changes)) ?? null;
    await ctx.adapters.config.apply(changes, ctx.idempotencyKey());
    const diff = renderDiff(changes);
    ctx.progress(`config:\n${fileDiff ?? diff}`);
    return { output: { changes, diff, fileDiff } };
  },
});

export const WarmCache = defineStep({
  name: "WarmCache",
  description: "Pre-load the most requested tiles through Honua's tile-operations warm job",
  input: z.object({ layers: z.array(z.object({ layerId: z.string(), tileMatrixSetId: z.string(), minZoom: z.number(), maxZoom: z.number() })), maxTilesPerLayer: z.number() }),
  output: z.object({ jobs: z.array(z.object({ layerId: z.string(), jobId: z.string(), tiles: z.number() })), tilesWarmed: z.number() }),
  prepare: () => ({ layers: [], maxTilesPerLayer: 20_000 }),
  async run(ctx, input) {
    const popular = await ctx.adapters.tiles.popularTiles(30);
    const byLayer = new Map<string, { tileMatrixSetId: string; zooms: number[] }>();
    for (const t of popular) {
      const e = byLayer.get(t.layerId) ?? { tileMatrixSetId: t.tileMatrixSetId, zooms: [] };
      e.zooms.push(t.z);
      byLayer.set(t.layerId, e);
    }
    const layers = input.layers.length ? input.layers : [...byLayer.entries()].slice(0, 4).map(([layerId, e]) => ({ layerId, tileMatrixSetId: e.tileMatrixSetId, minZoom: Math.min(...e.zooms), maxZoom: Math.max(...e.zooms) }));
    const jobs = [];
    for (const l of layers) {
      const res = await ctx.adapters.tiles.submitJob({ operation: "warm", ...l, maxTiles: input.maxTilesPerLayer }, ctx.idempotencyKey(l.layerId), (m) => ctx.progress(`${l.layerId}: ${m}`));
      jobs.push({ layerId: l.layerId, jobId: res.jobId, tiles: res.tilesProcessed });
    }
    const tilesWarmed = jobs.reduce((a, j) => a + j.tiles, 0);
    return { output: { jobs, tilesWarmed }, reason: `${tilesWarmed} tiles warmed in ${jobs.length} layers` };
  },
});

const StageOutput = z.object({ percent: z.number(), window: MetricsSummary, verdict: z.enum(["healthy", "degraded", "inconclusive"]), reason: z.string(), evidence: z.string().nullable() });

/** A monitoring window that starts once per step and stage, even across a crash. */
async function watchWindow(ctx: StepContext, minutes: number, baseline: MetricsSummary) {
  const m = ctx.deploymentConfig.monitoring;
  const start = new Date(await ctx.remember("window-start", ctx.adapters.clock.now().toISOString()));
  return watch(ctx.adapters, minutes, m.sampleEveryMinutes, {
    start, baseline, monitoring: m, stopRequested: () => ctx.stopRequested(), attach: (body) => ctx.attach("window", body),
  });
}

export const EnableCachingGradually = defineStep({
  name: "EnableCachingGradually",
  description: "Shift traffic onto the cache stage by stage (a traffic gate before each), watching each stage",
  input: z.object({ percent: z.number().int().min(1).max(100), baseline: MetricsSummary }),
  output: StageOutput,
  stages: (view) => view.output(DesignCachingStrategy).rolloutSteps,
  prepare: (view, stage) => ({ percent: stage ?? 100, baseline: view.output(AnalyzeCurrentPerformance).baseline }),
  async run(ctx, { percent, baseline }) {
    await ctx.adapters.traffic.setShare("cache", percent, ctx.idempotencyKey());
    const m = ctx.deploymentConfig.monitoring;
    const { window, verdict, reason, evidence } = await watchWindow(ctx, m.stageMinutes, baseline);
    ctx.progress(`${percent}% on cache: ${reason}`);
    return { output: { percent, window, verdict, reason, evidence }, verdict, reason: `${percent}%: ${reason}` };
  },
  gate: {
    kind: "traffic",
    async describe(ctx, view, stage) {
      const from = await ctx.adapters.traffic.share("cache");
      const s = view.output(DesignCachingStrategy);
      const m = ctx.deploymentConfig.monitoring;
      return {
        action: `Route ${stage}% of ${ctx.deployment} traffic through the ${s.cacheType} cache (now ${from}%), then watch for ${m.stageMinutes} min`,
        why: `Stage ${s.rolloutSteps.indexOf(stage ?? 100) + 1} of ${s.rolloutSteps.length} (${s.rolloutSteps.join(" -> ")}%).`,
        risk: `Automatic rollback to 0% and the previous config if errors exceed ${(m.errorRateThreshold * 100).toFixed(1)}% or p95 exceeds baseline x ${m.latencyFactor}.`,
        change: { traffic: { from, to: stage ?? 100 } },
      };
    },
  },
});

export const MonitorCachePerformance = defineStep({
  name: "MonitorCachePerformance",
  description: "Watch the full window (1 h in prod) at 100%; roll back automatically on degradation",
  input: z.object({ baseline: MetricsSummary }),
  output: z.object({ window: MetricsSummary, verdict: z.enum(["healthy", "degraded", "inconclusive"]), reason: z.string(), evidence: z.string().nullable() }),
  prepare: (view) => ({ baseline: view.output(AnalyzeCurrentPerformance).baseline }),
  async run(ctx, { baseline }) {
    const m = ctx.deploymentConfig.monitoring;
    const { window, verdict, reason, evidence } = await watchWindow(ctx, m.windowMinutes, baseline);
    return { output: { window, verdict, reason, evidence }, verdict, reason, metrics: { after: window } };
  },
});

export const OptimizeCacheSettings = defineStep({
  name: "OptimizeCacheSettings",
  description: "Tune TTLs from the observed hit ratio; recommend size changes (resizing needs its own provision gate)",
  input: z.object({ strategy: Strategy, observed: MetricsSummary }),
  output: z.object({ changes: z.array(ConfigChange), recommendations: z.array(z.string()) }),
  prepare: (view) => ({ strategy: view.output(DesignCachingStrategy), observed: view.output(MonitorCachePerformance).window }),
  async run(ctx, { strategy, observed }) {
    const recommendations: string[] = [];
    const desired: Record<string, string> = {};
    const hit = observed.hitRatio;
    if (hit !== null && hit < 0.8 && strategy.ttlSeconds < 86_400) {
      const ttl = Math.min(strategy.ttlSeconds * 2, 86_400);
      if (strategy.cacheType === "redis") {
        desired.Cache__DefaultTtlSeconds = String(ttl);
        desired.Cache__LayerTtlSeconds = String(ttl);
      } else desired.TileOptions__CacheMaxAge = String(ttl);
      recommendations.push(`hit ratio ${pct(hit)} < 80%: TTL raised ${strategy.ttlSeconds} -> ${ttl} s`);
    } else {
      recommendations.push(`hit ratio ${pct(hit)}: TTL ${strategy.ttlSeconds} s kept`);
    }
    if (hit !== null && hit < 0.6) recommendations.push(`consider a larger node than ${strategy.nodeType} (working set may not fit); resizing is a separate, gated change`);
    const changes = diffConfig(await ctx.adapters.config.read(), desired);
    if (changes.length) await ctx.adapters.config.apply(changes, ctx.idempotencyKey());
    return { output: { changes, recommendations }, reason: recommendations.join("; ") };
  },
});

export const GeneratePerformanceReport = defineStep({
  name: "GeneratePerformanceReport",
  description: "Before/after: p95, hit ratio, origin load, monthly cost",
  input: z.object({ before: MetricsSummary, after: MetricsSummary, cost: z.object({ netMonthlyUsd: z.number() }) }),
  output: z.object({
    p95ImprovementPct: z.number().nullable(), originLoadReductionPct: z.number().nullable(),
    monthlyCostBefore: z.number().nullable(), monthlyCostAfter: z.number().nullable(), markdown: z.string(),
  }),
  prepare: (view) => ({
    before: view.output(AnalyzeCurrentPerformance).baseline,
    after: view.output(MonitorCachePerformance).window,
    cost: view.output(EstimateCostImpact),
  }),
  async run(ctx, { before, after }) {
    const change = (a: number | null, b: number | null) => (a && b !== null ? Number((((a - b) / a) * 100).toFixed(1)) : null);
    const p95ImprovementPct = change(before.p95Ms, after.p95Ms);
    const originLoadReductionPct = change(before.originRequestsPerSecond, after.originRequestsPerSecond);
    const row = (label: string, a: string, b: string) => `| ${label} | ${a} | ${b} |`;
    const markdown = [
      `## Caching on ${ctx.deployment}: before / after`,
      "",
      "| metric | before | after |",
      "|---|---|---|",
      row("p95 latency", `${before.p95Ms} ms`, `${after.p95Ms} ms (${p95ImprovementPct ?? "n/a"}% better)`),
      row("error rate", pct(before.errorRate), pct(after.errorRate)),
      row("cache hit ratio", pct(before.hitRatio), pct(after.hitRatio)),
      row("origin load", `${before.originRequestsPerSecond} req/s`, `${after.originRequestsPerSecond} req/s (${originLoadReductionPct ?? "n/a"}% less)`),
      row("monthly cost", before.monthlyCostUsd === null ? "n/a" : usd(before.monthlyCostUsd), after.monthlyCostUsd === null ? "n/a" : usd(after.monthlyCostUsd)),
    ].join("\n");
    return {
      output: { p95ImprovementPct, originLoadReductionPct, monthlyCostBefore: before.monthlyCostUsd, monthlyCostAfter: after.monthlyCostUsd, markdown },
      reason: `p95 ${p95ImprovementPct}% better, origin load ${originLoadReductionPct}% lower`,
    };
  },
});

/** Last known-good: no traffic on the cache, every config key back to its value before the run. */
export async function rollbackCaching(ctx: StepContext, view: RunView) {
  const restored: string[] = [];
  const failed: string[] = [];
  // Each part is restored even when another fails: with the config back, the cache path serves what the
  // primary serves, so a traffic switch that will not move is far less harmful.
  try {
    if ((await ctx.adapters.traffic.share("cache")) !== 0) {
      await ctx.adapters.traffic.setShare("cache", 0, ctx.idempotencyKey("traffic"));
      restored.push("cache traffic share -> 0%");
    }
  } catch (e) {
    failed.push(`traffic share -> 0%: ${e instanceof Error ? e.message : String(e)}`);
  }
  const applied = [...(view.maybeOutput(ConfigureCaching)?.changes ?? []), ...(view.maybeOutput(OptimizeCacheSettings)?.changes ?? [])];
  if (applied.length) {
    const undo = inverse(applied);
    try {
      await ctx.adapters.config.apply(undo, ctx.idempotencyKey("config"));
      restored.push(...undo.map((c) => `${c.key} -> ${c.after ?? "(unset)"}`));
    } catch (e) {
      failed.push(`config: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (failed.length) {
    throw new AgentError("failed", `rollback incomplete (${failed.join("; ")}); restored: ${restored.join(", ") || "nothing"}; what failed must be restored by hand`);
  }
  const provisioned = view.maybeOutput(ProvisionCacheInfrastructure);
  const leftovers: { id: string; kind: string; description: string }[] = provisioned
    ? [{ id: provisioned.resource.id, kind: provisioned.resource.engine, description: `${provisioned.resource.engine} ${provisioned.resource.nodeType} ${provisioned.resource.id}` }]
    : [];
  // A provision that failed half way may still have created the resource: ask, so it is offered for deletion.
  const attempted = view.state.steps.some((s) => s.name === ProvisionCacheInfrastructure.name && s.status === "failed");
  if (!provisioned && attempted && ctx.adapters.cache.provisioned) {
    const spec = cacheSpecOf(view);
    const left = await ctx.adapters.cache.provisioned(ctx.idempotencyKeyOf(ProvisionCacheInfrastructure.name));
    if (left) leftovers.push({ id: left.id, kind: spec.engine, description: `${left.description} (created by a provision that did not finish)` });
  }
  // What the traffic router built to split requests (e.g. a CloudFront staging copy) is disabled at 0% but still
  // billed. Asked only when this run reached a traffic stage: a run that never routed traffic must not offer to
  // delete what an earlier run left and someone chose to keep.
  const routed = view.state.steps.some((s) => s.name === EnableCachingGradually.name);
  if (routed && ctx.adapters.traffic.leftovers) {
    try {
      for (const l of await ctx.adapters.traffic.leftovers()) leftovers.push({ id: l.id, kind: TRAFFIC_LEFTOVER, description: l.description });
    } catch (e) {
      // Traffic and config are restored; failing the rollback now would also drop the cache leftover from the delete gate.
      ctx.progress(`could not list what the traffic router left behind (${e instanceof Error ? e.message : String(e)}); check for a staging distribution or routing policy by hand`);
    }
  }
  return { restored, leftovers };
}

/** The leftover kind cleanup hands to the traffic router; every other kind is a cache engine. */
export const TRAFFIC_LEFTOVER = "traffic";

export async function cleanupCaching(ctx: StepContext, leftovers: { id: string; kind: string }[]) {
  // Traffic leftovers first: a staging copy may serve with a cache policy the cache resource owns, and
  // CloudFront refuses to delete a policy still in use.
  const ordered = [...leftovers.filter((l) => l.kind === TRAFFIC_LEFTOVER), ...leftovers.filter((l) => l.kind !== TRAFFIC_LEFTOVER)];
  for (const l of ordered) {
    if (l.kind !== TRAFFIC_LEFTOVER) {
      await ctx.adapters.cache.deprovision(l.id, ctx.idempotencyKey(l.id));
      continue;
    }
    const traffic = ctx.adapters.traffic;
    if (!traffic.deprovision) throw new AgentError("failed", `the traffic router cannot delete ${l.id}; delete it by hand`);
    await traffic.deprovision(l.id, ctx.idempotencyKey(l.id));
  }
}
