import { z } from "zod";
import { findSetting } from "../../../tools/config/keys.js";
import type { CacheEngine, DeploymentAdapters, TrafficRouter } from "../../../tools/types.js";
import type { Preflight } from "../../step.js";
import { CacheType, type CachingParams } from "./params.js";

export const ENGINE_NAME: Record<CacheEngine, string> = { redis: "Redis", varnish: "Varnish", cloudfront: "CloudFront" };

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

/** Judges a request against what is in place: the same answer in the planner's preview and in the run's design step. */
export function judgeCachingRequest(deployment: string, engines: readonly CacheEngine[], existing: readonly InPlaceCache[], p: CachingParams): Preflight {
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
export async function cachingPreflight(deployment: string, adapters: DeploymentAdapters, p: CachingParams): Promise<Preflight> {
  return judgeCachingRequest(deployment, adapters.cache.engines, await cachesInPlace(adapters), p);
}
