import { z } from "zod";
import type { Deployment } from "../../config.js";
import type { Effect } from "../../core/journal.js";
import { AgentError } from "../../core/errors.js";
import { KEYS_LEFTOVER, cleanupLeftovers, rollbackFromJournal } from "../../graph/rollback.js";
import { ConfigChange } from "../../core/sections.js";
import { MetricsSummary } from "../../core/metrics.js";
import { defineStep, type RunView, type StepContext } from "../../graph/step.js";
import { CachingParams } from "../../planner/plan.js";
import { PRICES, PRICE_SOURCE, monthlyRequests, originMonthlyUsd, pickNode, priceOf } from "../cost/prices.js";
import { diffConfig, renderDiff } from "../config/diff.js";
import { findSetting, settingValue } from "../config/keys.js";
import { noDataHint } from "../metrics/no-data.js";
import { snapshot, watch } from "../metrics/observe.js";
import { planCacheTtls } from "./honua-options.js";
import type { CacheEngine, CacheSpec, DeploymentAdapters, TrafficRouter } from "../types.js";

const CacheType = z.enum(["redis", "varnish", "cloudfront"]);
const DEFAULT_ROLLOUT = [10, 50, 100];
const AVG_TILE_KB = 28;
const DEFAULT_PREFIX = "honua:";

const params = (view: RunView) => CachingParams.parse(view.params);
const pct = (x: number | null) => (x === null ? "n/a" : `${(x * 100).toFixed(1)}%`);
const usd = (x: number) => `${x < 0 ? "-" : ""}$${Math.abs(x).toFixed(2)}`;
const ENGINE_NAME: Record<CacheEngine, string> = { redis: "Redis", varnish: "Varnish", cloudfront: "CloudFront" };

/**
 * The traffic path a cache engine's rollout moves: its own where the router has one per engine (the sandbox), else the
 * one `cache` split a real deployment has for its one cache engine.
 */
export function cacheFeature(router: TrafficRouter, engine: CacheEngine): string {
  const own = `cache:${engine}`;
  return (router.features?.() ?? ["cache"]).includes(own) ? own : "cache";
}

/** A cache already serving the deployment, and what shows it. */
export const InPlaceCache = z.object({
  engine: CacheType,
  feature: z.string(),
  /** Percent of traffic on its path; null where the router cannot say. */
  share: z.number().nullable(),
  /** Honua's config already points at it (Redis: a connection string in any spelling). */
  configured: z.boolean(),
  evidence: z.array(z.string()),
});
export type InPlaceCache = z.infer<typeof InPlaceCache>;

/** Every cache engine the deployment can have that is configured or carries traffic now: read-only. */
export async function cachesInPlace(adapters: DeploymentAdapters): Promise<InPlaceCache[]> {
  const cfg = await adapters.config.read();
  const out: InPlaceCache[] = [];
  for (const engine of adapters.cache.engines) {
    const feature = cacheFeature(adapters.traffic, engine);
    let share: number | null = null;
    try {
      share = await adapters.traffic.share(feature);
    } catch {
      share = null; // no router for it: what the config says is the evidence
    }
    const evidence: string[] = [];
    const redis = engine === "redis" ? findSetting(cfg, "ConnectionStrings__Redis") : undefined;
    if (redis) evidence.push(`Honua's config sets ${redis.key} = ${redis.value}`);
    if (share !== null && share > 0) evidence.push(`${share}% of traffic is on the ${feature} path`);
    if (evidence.length) out.push({ engine, feature, share, configured: redis !== undefined, evidence });
  }
  return out;
}

/** What a caching request meets on the deployment, decided before anything starts (at plan time, and again at design). */
export interface CachingPreflight {
  /** The requested cache is already there: nothing to do. */
  inPlace: { summary: string; evidence: string[] } | null;
  /** It cannot be done as asked here; why, and what to do instead. */
  refuse: string | null;
  /** What the change means for what is in place (shown in the plan and on the gate). */
  notes: string[];
}

/** Judges a request against what is in place: the same answer in the planner's preview and in the run's design step. */
export function judgeCachingRequest(deployment: string, engines: readonly CacheEngine[], existing: readonly InPlaceCache[], p: CachingParams): CachingPreflight {
  const engine = p.cacheType ?? "redis";
  if (!engines.includes(engine)) {
    return { inPlace: null, refuse: `${deployment}'s cache section provides ${engines.map((e) => ENGINE_NAME[e]).join(", ") || "no cache"}, not ${ENGINE_NAME[engine]}: change cache: in honua-agent.yaml to add ${ENGINE_NAME[engine]}`, notes: [] };
  }
  const same = existing.find((c) => c.engine === engine);
  if (same && (same.configured || same.share === 100 || same.share === null)) {
    return { inPlace: { summary: `${deployment} already has ${ENGINE_NAME[engine]} caching`, evidence: same.evidence }, refuse: null, notes: [] };
  }
  if (same) {
    return {
      inPlace: null,
      refuse: `${same.share}% of ${deployment}'s traffic is already on the ${same.feature} path, but Honua's config does not use ${ENGINE_NAME[engine]}: an earlier change did not finish. Roll that traffic back (or finish it) first; honua-agent will not take over a split it did not set`,
      notes: [],
    };
  }
  const notes = existing.map((c) => `${ENGINE_NAME[c.engine]} stays in place (${c.evidence.join("; ")}); ${ENGINE_NAME[engine]} is added on its own traffic path and ${ENGINE_NAME[c.engine]} is not touched`);
  return { inPlace: null, refuse: null, notes };
}

/** The plan-time check: read-only, against the deployment as it is now. */
export async function cachingPreflight(deployment: string, adapters: DeploymentAdapters, p: CachingParams): Promise<CachingPreflight> {
  return judgeCachingRequest(deployment, adapters.cache.engines, await cachesInPlace(adapters), p);
}

export const AnalyzeCurrentPerformance = defineStep({
  name: "AnalyzeCurrentPerformance",
  description: "Measure p95 latency, error rate, cache hit ratio, origin load and monthly cost over the last hour; find the caches in place",
  input: z.object({ deployment: z.string(), lookbackMinutes: z.number().positive() }),
  output: z.object({
    baseline: MetricsSummary,
    costBreakdown: z.record(z.string(), z.number()),
    existing: z.array(InPlaceCache).default([]),
    topLayers: z.array(z.object({ layerId: z.string(), requestsPerHour: z.number() })),
  }),
  prepare: (view) => ({ deployment: view.state.deployment, lookbackMinutes: 60 }),
  async run(ctx, input) {
    const m = ctx.deploymentConfig.monitoring;
    const baseline = await snapshot(ctx.adapters, input.lookbackMinutes, m.sampleEveryMinutes);
    if (baseline.samples < m.minSamples || baseline.p95Ms === null) {
      const hint = ` Check the metrics source.${baseline.samples === 0 ? ` ${noDataHint(ctx.adapters.metrics.describe?.() ?? ctx.deployment)}` : ""}`;
      throw new AgentError("failed", `no baseline: ${baseline.samples} metric samples in the last ${input.lookbackMinutes} min (need ${m.minSamples}); a rollout cannot be judged without one.${hint}`);
    }
    const existing = await cachesInPlace(ctx.adapters);
    const tiles = await ctx.adapters.tiles.popularTiles(50);
    const byLayer = new Map<string, number>();
    for (const t of tiles) byLayer.set(t.layerId, (byLayer.get(t.layerId) ?? 0) + t.requestsPerHour);
    const observed = baseline.observedMinutes ?? baseline.windowMinutes;
    ctx.progress(`baseline over ${observed} min (${baseline.samples} samples): p95 ${baseline.p95Ms} ms, errors ${pct(baseline.errorRate)}, hit ratio ${pct(baseline.hitRatio)}, origin ${baseline.originRequestsPerSecond} req/s`);
    return {
      output: {
        baseline,
        costBreakdown: await ctx.adapters.cost.monthly(),
        existing,
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
  /** The traffic path this rollout moves (its own where the deployment has one per cache engine). */
  feature: z.string().default("cache"),
  /** What the change means for the caches in place, and corrections made to keep Honua's config valid. */
  notes: z.array(z.string()).default([]),
  /** Honua config keys this strategy sets; `{endpoint}` is filled in once the cache exists. */
  honuaConfig: z.record(z.string(), z.string()),
});

/** The key prefix Honua uses: the one its config already sets, else the deployment's `cache.redis.keyPrefix`, else Honua's default. */
function keyPrefixFor(d: Deployment, cfg: Record<string, string>): { prefix: string; fromConfig: boolean; note: string | null } {
  const inConfig = settingValue(cfg, "Cache__KeyPrefix");
  const configured = d.cache && "redis" in d.cache ? d.cache.redis.keyPrefix : undefined;
  if (inConfig !== undefined) {
    const note = configured !== undefined && configured !== inConfig ? `Honua's config sets Cache__KeyPrefix ${inConfig}; that is the prefix used (cache.redis.keyPrefix says ${configured})` : null;
    return { prefix: inConfig, fromConfig: true, note };
  }
  return { prefix: configured ?? DEFAULT_PREFIX, fromConfig: false, note: null };
}

export const DesignCachingStrategy = defineStep({
  name: "DesignCachingStrategy",
  description: "Choose cache type, TTLs, eviction, key prefix and size; map them to Honua config keys Honua accepts",
  input: z.object({ params: CachingParams, baselineRps: z.number(), existing: z.array(InPlaceCache) }),
  output: Strategy,
  prepare: (view) => {
    const a = view.output(AnalyzeCurrentPerformance);
    return { params: params(view), baselineRps: a.baseline.requestsPerSecond ?? 0, existing: a.existing };
  },
  async run(ctx, { params: p, baselineRps, existing }) {
    const judged = judgeCachingRequest(ctx.deployment, ctx.adapters.cache.engines, existing, p);
    if (judged.inPlace) throw new AgentError("failed", `already in place: ${judged.inPlace.summary} (${judged.inPlace.evidence.join("; ")}); nothing to add`);
    if (judged.refuse) throw new AgentError("failed", judged.refuse);
    const cacheType = p.cacheType ?? "redis";
    const reason = p.cacheType
      ? `${p.cacheType} was requested`
      : "Redis: Honua caches tiles, layers and queries in Redis natively (ConnectionStrings__Redis), it is required for multi-node, and it needs no HTTP cache-header changes";
    const ttlSeconds = p.ttlSeconds ?? 3600;
    const ttlReason = p.ttlSeconds ? "requested" : "tiles change rarely; 1 h keeps the hit ratio high while bounding staleness (Honua default 300 s)";
    // Distinct tiles per day ~0.5% of requests; 30% headroom for keys and fragmentation.
    const memoryGb = Number(((baselineRps * 86_400 * 0.005 * AVG_TILE_KB * 1.3) / 1e6).toFixed(2));
    const node = cacheType === "cloudfront" ? { type: "cloudfront-distribution", memoryGb: 0 } : pickNode(PRICES[cacheType], memoryGb);
    const cfg = await ctx.adapters.config.read();
    const notes = [...judged.notes];
    const prefix = keyPrefixFor(ctx.deploymentConfig, cfg);
    if (prefix.note) notes.push(prefix.note);
    let honuaConfig: Record<string, string>;
    if (cacheType === "redis") {
      const ttls = planCacheTtls(cfg, ttlSeconds);
      if (ttls.refused) throw new AgentError("failed", `TTL ${ttlSeconds} s cannot be configured: ${ttls.refused}`);
      notes.push(...ttls.notes);
      honuaConfig = {
        ConnectionStrings__Redis: "{endpoint}",
        Cache__Enabled: "true",
        Cache__EnableFallback: "true",
        ...ttls.set,
        ...(prefix.fromConfig ? {} : { Cache__KeyPrefix: prefix.prefix }),
      };
    } else {
      // An HTTP cache honours Honua's Cache-Control for tiles; Honua's own in-process response cache
      // (Cache__ResponseCachingEnabled) is another thing entirely and stays as it is.
      honuaConfig = { TileOptions__CacheMaxAge: String(ttlSeconds) };
      const maxAge = settingValue(cfg, "TileOptions__CacheMaxAge");
      const others = existing.filter((c) => c.engine !== "redis");
      if (maxAge !== undefined && maxAge !== String(ttlSeconds) && others.length) {
        notes.push(`TileOptions__CacheMaxAge changes ${maxAge} -> ${ttlSeconds}; ${others.map((c) => ENGINE_NAME[c.engine]).join(", ")} in place honours it too`);
      }
    }
    const feature = cacheFeature(ctx.adapters.traffic, cacheType);
    return {
      output: {
        cacheType, reason, ttlSeconds, ttlReason, evictionPolicy: cacheType === "redis" ? "allkeys-lru" : "lru",
        keyPrefix: prefix.prefix, nodeType: node.type, memoryGb, rolloutSteps: p.rolloutSteps ?? DEFAULT_ROLLOUT, feature, notes, honuaConfig,
      },
      reason: [reason, ...notes].join("; "),
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

const Resource = z.object({
  id: z.string(), engine: CacheType, nodeType: z.string(), endpoint: z.string(), createdAt: z.string(),
  created: z.boolean().default(true),
  replaced: z.array(z.object({ target: z.string(), before: z.string(), after: z.string() })).default([]),
});

function cacheSpecOf(view: RunView): CacheSpec & { ttlSeconds: number } {
  const s = view.output(DesignCachingStrategy);
  return { engine: s.cacheType, nodeType: s.nodeType, memoryGb: s.memoryGb, evictionPolicy: s.evictionPolicy, ttlSeconds: s.ttlSeconds };
}

export const ProvisionCacheInfrastructure = defineStep({
  name: "ProvisionCacheInfrastructure",
  description: "Create the cache (Redis node, Varnish host or CDN distribution), or adopt the deployment's own",
  input: z.object({ engine: CacheType, nodeType: z.string(), memoryGb: z.number(), evictionPolicy: z.string(), ttlSeconds: z.number().int().positive() }),
  output: z.object({ resource: Resource }),
  prepare: (view) => cacheSpecOf(view),
  async run(ctx, spec) {
    const creates = ctx.adapters.cache.intent?.(spec).creates ?? true;
    // Before acting: if the call dies half way, the rollback asks the cache what this key created.
    const { key } = await ctx.journal.intend(null, [{ kind: "resource", capability: "cache", id: null, resourceKind: spec.engine, description: `${spec.engine} ${spec.nodeType}`, created: creates }]);
    const r = await ctx.adapters.cache.provision(spec, key);
    const resource = Resource.parse(r);
    await ctx.journal.done(null, [
      { kind: "resource", capability: "cache", id: resource.id, resourceKind: resource.engine, description: `${resource.engine} ${resource.nodeType} ${resource.id}`, created: resource.created },
      ...resource.replaced.map((x): Effect => ({ kind: "restore", capability: "cache", target: x.target, before: x.before, after: x.after })),
    ]);
    ctx.progress(`${resource.created ? "created" : "adopted"} ${resource.engine} ${resource.id} (${resource.nodeType})`);
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
      const adopt = intent !== null && !intent.creates;
      const prefix = s.cacheType === "redis" ? ` (key prefix ${s.keyPrefix})` : "";
      return {
        action: intent?.action ?? `Create a ${s.cacheType} cache ${s.nodeType} (${s.memoryGb} GB needed, eviction ${s.evictionPolicy}) for ${ctx.deployment}`,
        why: [`${s.reason}. Expected hit ratio ${pct(cost.expectedHitRatio)}; net ${usd(cost.netMonthlyUsd)}/month (+${usd(cost.addedMonthlyUsd)} cache, -${usd(cost.originSavingsMonthlyUsd)} origin).`, ...s.notes].join(" "),
        risk: adopt
          ? `Low: nothing is created; the existing cache is checked and prepared${prefix}. No traffic reaches it before the traffic gates.`
          : `Low: a new, unused resource that is billed from now on${prefix}. No traffic reaches it before the traffic gates.`,
        change: {
          config,
          resources: [{ kind: s.cacheType, nodeType: s.nodeType, memoryGb: s.memoryGb, monthlyUsd: cost.addedMonthlyUsd, ...(s.cacheType === "redis" ? { keyPrefix: s.keyPrefix } : {}), action: adopt ? "adopt" : "create" }],
        },
      };
    },
  },
});

const configOf = (effects: readonly Effect[]): ConfigChange[] =>
  effects.flatMap((e) => (e.kind === "config" ? [{ key: e.key, before: e.before, after: e.after }] : []));

/** Writes `desired` into Honua's config, journalled first: a replay applies what the first attempt recorded. */
async function applyConfig(ctx: StepContext, desired: Record<string, string>): Promise<ConfigChange[]> {
  const planned = diffConfig(await ctx.adapters.config.read(), desired);
  const { key, effects } = await ctx.journal.intend(null, planned.map((c): Effect => ({ kind: "config", ...c })));
  const changes = configOf(effects);
  if (changes.length) await ctx.adapters.config.apply(changes, key);
  await ctx.journal.done(null);
  return changes;
}

export const ConfigureCaching = defineStep({
  name: "ConfigureCaching",
  description: "Point Honua at the cache and set TTLs (config keys), journalling what each key was for the rollback",
  input: z.object({ desired: z.record(z.string(), z.string()), endpoint: z.string() }),
  output: z.object({ changes: z.array(ConfigChange), diff: z.string(), fileDiff: z.string().nullable() }),
  prepare: (view) => ({ desired: view.output(DesignCachingStrategy).honuaConfig, endpoint: view.output(ProvisionCacheInfrastructure).resource.endpoint }),
  async run(ctx, { desired, endpoint }) {
    const filled = Object.fromEntries(Object.entries(desired).map(([k, v]) => [k, v.replace("{endpoint}", endpoint)]));
    const fileDiff = (await ctx.adapters.config.preview?.(diffConfig(await ctx.adapters.config.read(), filled))) ?? null;
    const changes = await applyConfig(ctx, filled);
    const diff = renderDiff(changes);
    ctx.progress(`config:\n${fileDiff ?? diff}`);
    return { output: { changes, diff, fileDiff } };
  },
});

export const WarmCache = defineStep({
  name: "WarmCache",
  description: "Pre-load the most requested tiles through Honua's tile-operations warm job",
  input: z.object({
    layers: z.array(z.object({ layerId: z.string(), tileMatrixSetId: z.string(), minZoom: z.number(), maxZoom: z.number() })),
    maxTilesPerLayer: z.number(),
    /** Keys written into a cache the run created go with it; into one it adopted, they are the run's to delete. */
    cacheCreated: z.boolean().default(true),
  }),
  output: z.object({ jobs: z.array(z.object({ layerId: z.string(), jobId: z.string(), tiles: z.number() })), tilesWarmed: z.number() }),
  prepare: (view) => ({ layers: [], maxTilesPerLayer: 20_000, cacheCreated: view.output(ProvisionCacheInfrastructure).resource.created }),
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
      const own = !input.cacheCreated;
      const keys = (id: string | null, description: string, deletes?: string): Effect => ({ kind: "resource", capability: "tiles", id, resourceKind: KEYS_LEFTOVER, description, created: true, ...(deletes ? { deletes } : {}) });
      const { key } = await ctx.journal.intend(l.layerId, own ? [keys(null, `tile keys warmed for ${l.layerId}`)] : []);
      const res = await ctx.adapters.tiles.submitJob({ operation: "warm", ...l, maxTiles: input.maxTilesPerLayer }, key, (m) => ctx.progress(`${l.layerId}: ${m}`));
      const left = own ? ((await ctx.adapters.tiles.written?.(key)) ?? null) : null;
      await ctx.journal.done(l.layerId, left ? [keys(key, left.description, left.deletes)] : []);
      jobs.push({ layerId: l.layerId, jobId: res.jobId, tiles: res.tilesProcessed });
    }
    const tilesWarmed = jobs.reduce((a, j) => a + j.tiles, 0);
    return { output: { jobs, tilesWarmed }, reason: `${tilesWarmed} tiles warmed in ${jobs.length} ${jobs.length === 1 ? "layer" : "layers"}` };
  },
});

const StageOutput = z.object({ percent: z.number(), window: MetricsSummary, verdict: z.enum(["healthy", "degraded", "inconclusive"]), reason: z.string(), evidence: z.string().nullable() });

/** A monitoring window that starts once per step and stage, even across a crash. */
async function watchWindow(ctx: StepContext, minutes: number, baseline: MetricsSummary, share: number) {
  const m = ctx.deploymentConfig.monitoring;
  const start = new Date(await ctx.remember("window-start", ctx.adapters.clock.now().toISOString()));
  const w = await watch(ctx.adapters, minutes, m.sampleEveryMinutes, {
    start, baseline, monitoring: m, stopRequested: () => ctx.stopRequested(), attach: (body) => ctx.attach("window", body),
  });
  return { ...w, window: { ...w.window, trafficShare: share } };
}

/** The share the run found on its traffic path before it first moved it: where a rollback puts it back. */
async function foundShare(ctx: StepContext, feature: string): Promise<number | null> {
  for (const e of await ctx.journal.entries()) for (const f of e.effects) if (f.kind === "share" && f.feature === feature) return f.before;
  return null;
}

export const EnableCachingGradually = defineStep({
  name: "EnableCachingGradually",
  description: "Shift traffic onto the cache stage by stage (a traffic gate before each), watching each stage",
  input: z.object({ percent: z.number().int().min(1).max(100), feature: z.string(), baseline: MetricsSummary }),
  output: StageOutput,
  stages: (view) => view.output(DesignCachingStrategy).rolloutSteps,
  prepare: (view, stage) => ({ percent: stage ?? 100, feature: view.output(DesignCachingStrategy).feature, baseline: view.output(AnalyzeCurrentPerformance).baseline }),
  async run(ctx, { percent, feature, baseline }) {
    const from = await ctx.adapters.traffic.share(feature);
    const { key } = await ctx.journal.intend(null, [{ kind: "share", feature, before: from, after: percent }]);
    await ctx.adapters.traffic.setShare(feature, percent, key);
    await ctx.journal.done(null);
    const m = ctx.deploymentConfig.monitoring;
    const { window, verdict, reason, evidence } = await watchWindow(ctx, m.stageMinutes, baseline, percent);
    ctx.progress(`${percent}% on the cache: ${reason}`);
    return { output: { percent, window, verdict, reason, evidence }, verdict, reason: `${percent}%: ${reason}` };
  },
  gate: {
    kind: "traffic",
    async describe(ctx, view, stage) {
      const s = view.output(DesignCachingStrategy);
      const from = await ctx.adapters.traffic.share(s.feature);
      const back = (await foundShare(ctx, s.feature)) ?? from;
      const m = ctx.deploymentConfig.monitoring;
      const index = s.rolloutSteps.indexOf(stage ?? 100);
      return {
        action: `Route ${stage}% of ${ctx.deployment} traffic through the ${s.cacheType} cache (now ${from}%), then watch for ${m.stageMinutes} min`,
        why: [`Stage ${index + 1} of ${s.rolloutSteps.length} (${s.rolloutSteps.join(" -> ")}%).`, ...s.notes].join(" "),
        risk: `Automatic rollback to ${back}% and the config this run found if errors exceed ${(m.errorRateThreshold * 100).toFixed(1)}% or p95 exceeds baseline x ${m.latencyFactor}; nothing this run did not change is touched.`,
        change: { traffic: { from, to: stage ?? 100 } },
      };
    },
  },
});

export const MonitorCachePerformance = defineStep({
  name: "MonitorCachePerformance",
  description: "Watch the full window (1 h in prod) at 100%; roll back automatically on degradation",
  input: z.object({ baseline: MetricsSummary, share: z.number().default(100) }),
  output: z.object({ window: MetricsSummary, verdict: z.enum(["healthy", "degraded", "inconclusive"]), reason: z.string(), evidence: z.string().nullable() }),
  prepare: (view) => ({ baseline: view.output(AnalyzeCurrentPerformance).baseline, share: view.output(EnableCachingGradually).percent }),
  async run(ctx, { baseline, share }) {
    const m = ctx.deploymentConfig.monitoring;
    const { window, verdict, reason, evidence } = await watchWindow(ctx, m.windowMinutes, baseline, share);
    return { output: { window, verdict, reason, evidence }, verdict, reason, metrics: { after: window } };
  },
});

export const OptimizeCacheSettings = defineStep({
  name: "OptimizeCacheSettings",
  description: "Tune TTLs from the observed hit ratio within Honua's rules; recommend size changes (resizing needs its own provision gate)",
  input: z.object({ strategy: Strategy, observed: MetricsSummary }),
  output: z.object({ changes: z.array(ConfigChange), recommendations: z.array(z.string()) }),
  prepare: (view) => ({ strategy: view.output(DesignCachingStrategy), observed: view.output(MonitorCachePerformance).window }),
  async run(ctx, { strategy, observed }) {
    const recommendations: string[] = [];
    let desired: Record<string, string> = {};
    const hit = observed.hitRatio;
    if (hit !== null && hit < 0.8 && strategy.ttlSeconds < 86_400) {
      const ttl = Math.min(strategy.ttlSeconds * 2, 86_400);
      if (strategy.cacheType === "redis") {
        const ttls = planCacheTtls(await ctx.adapters.config.read(), ttl);
        // Never a tuning Honua would refuse to start with: a TTL it cannot honour is kept as it is.
        if (ttls.refused) recommendations.push(`TTL kept at ${strategy.ttlSeconds} s: ${ttls.refused}`);
        else {
          desired = ttls.set;
          recommendations.push(`hit ratio ${pct(hit)} < 80%: TTL raised ${strategy.ttlSeconds} -> ${ttl} s`, ...ttls.notes);
        }
      } else {
        desired = { TileOptions__CacheMaxAge: String(ttl) };
        recommendations.push(`hit ratio ${pct(hit)} < 80%: TTL raised ${strategy.ttlSeconds} -> ${ttl} s`);
      }
    } else {
      recommendations.push(`hit ratio ${pct(hit)}: TTL ${strategy.ttlSeconds} s kept`);
    }
    if (hit !== null && hit < 0.6) recommendations.push(`consider a larger node than ${strategy.nodeType} (working set may not fit); resizing is a separate, gated change`);
    const changes = await applyConfig(ctx, desired);
    return { output: { changes, recommendations }, reason: recommendations.join("; ") };
  },
});

/** `(a - b) / a` in percent, one decimal; null without both. Positive: `b` is lower. */
const change = (a: number | null, b: number | null): number | null => (a && b !== null ? Number((((a - b) / a) * 100).toFixed(1)) : null);
/** "24.2% better" / "3.1% worse" / "unchanged"; for a lower-is-better metric. */
const lowerIsBetter = (x: number | null, better: string, worse: string): string =>
  x === null ? "n/a" : x === 0 ? "unchanged" : `${Math.abs(x)}% ${x > 0 ? better : worse}`;

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
    const p95ImprovementPct = change(before.p95Ms, after.p95Ms);
    const originLoadReductionPct = change(before.originRequestsPerSecond, after.originRequestsPerSecond);
    const row = (label: string, a: string, b: string) => `| ${label} | ${a} | ${b} |`;
    const over = (m: MetricsSummary) => `${m.observedMinutes ?? m.windowMinutes} min, ${m.samples} samples${m.trafficShare ? `, ${m.trafficShare}% on the cache` : ""}`;
    const markdown = [
      `## Caching on ${ctx.deployment}: before / after`,
      "",
      "| metric | before | after |",
      "|---|---|---|",
      row("measured over", over(before), over(after)),
      row("p95 latency", `${before.p95Ms} ms`, `${after.p95Ms} ms (${lowerIsBetter(p95ImprovementPct, "better", "worse")})`),
      row("error rate", pct(before.errorRate), pct(after.errorRate)),
      row("cache hit ratio", pct(before.hitRatio), pct(after.hitRatio)),
      row("origin load", `${before.originRequestsPerSecond} req/s`, `${after.originRequestsPerSecond} req/s (${lowerIsBetter(originLoadReductionPct, "less", "more")})`),
      row("monthly cost", before.monthlyCostUsd === null ? "n/a" : usd(before.monthlyCostUsd), after.monthlyCostUsd === null ? "n/a" : usd(after.monthlyCostUsd)),
    ].join("\n");
    return {
      output: { p95ImprovementPct, originLoadReductionPct, monthlyCostBefore: before.monthlyCostUsd, monthlyCostAfter: after.monthlyCostUsd, markdown },
      reason: `p95 ${lowerIsBetter(p95ImprovementPct, "better", "worse")}, origin load ${lowerIsBetter(originLoadReductionPct, "lower", "higher")}`,
    };
  },
});

/** Caching's rollback is the journal's: exactly what this run changed, back to what it found. */
export const rollbackCaching = (ctx: StepContext, _view: RunView) => rollbackFromJournal(ctx);
export const cleanupCaching = cleanupLeftovers;
