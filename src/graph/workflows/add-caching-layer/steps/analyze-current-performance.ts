import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { MetricsSummary } from "../../../../core/metrics.js";
import { noDataHint } from "../../../../tools/metrics/no-data.js";
import { snapshot } from "../../../../tools/metrics/observe.js";
import { defineStep } from "../../../step.js";
import { InPlaceCache, cachesInPlace } from "../caches.js";
import { pct } from "../format.js";

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
