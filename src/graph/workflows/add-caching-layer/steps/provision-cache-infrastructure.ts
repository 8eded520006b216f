import { z } from "zod";
import type { Effect } from "../../../../core/journal.js";
import { diffConfig } from "../../../../tools/config/diff.js";
import type { CacheSpec } from "../../../../tools/types.js";
import { defineStep, type RunView } from "../../../step.js";
import { pct, usd } from "../format.js";
import { CacheType } from "../params.js";
import { DesignCachingStrategy } from "./design-caching-strategy.js";
import { EstimateCostImpact } from "./estimate-cost-impact.js";

/** The cache the run created or adopted. */
export const Resource = z.object({
  id: z.string(), engine: CacheType, nodeType: z.string(), endpoint: z.string(), createdAt: z.string(),
  created: z.boolean().default(true),
  replaced: z.array(z.object({ target: z.string(), before: z.string(), after: z.string() })).default([]),
});

export function cacheSpecOf(view: RunView): CacheSpec & { ttlSeconds: number } {
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
