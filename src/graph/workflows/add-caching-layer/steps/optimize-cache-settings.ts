import { z } from "zod";
import { MetricsSummary } from "../../../../core/metrics.js";
import { ConfigChange } from "../../../../core/sections.js";
import { planCacheTtls } from "../../../../tools/cache/honua-options.js";
import { applyConfig } from "../../../patterns/config.js";
import { defineStep } from "../../../step.js";
import { pct } from "../format.js";
import { DesignCachingStrategy, Strategy } from "./design-caching-strategy.js";
import { MonitorCachePerformance } from "./monitor-cache-performance.js";

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
