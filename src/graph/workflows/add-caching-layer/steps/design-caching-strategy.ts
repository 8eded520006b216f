import { z } from "zod";
import type { Deployment } from "../../../../config.js";
import { AgentError } from "../../../../core/errors.js";
import { planCacheTtls } from "../../../../tools/cache/honua-options.js";
import { settingValue } from "../../../../tools/config/keys.js";
import { PRICES, pickNode } from "../../../../tools/cost/prices.js";
import { defineStep } from "../../../step.js";
import { ENGINE_NAME, InPlaceCache, cacheFeature, judgeCachingRequest } from "../caches.js";
import { CacheType, CachingParams } from "../params.js";
import { AnalyzeCurrentPerformance } from "./analyze-current-performance.js";

const DEFAULT_ROLLOUT = [10, 50, 100];
const AVG_TILE_KB = 28;
const DEFAULT_PREFIX = "honua:";

/** The design step's choice: what every later step builds on. */
export const Strategy = z.object({
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
    return { params: CachingParams.parse(view.params), baselineRps: a.baseline.requestsPerSecond ?? 0, existing: a.existing };
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
