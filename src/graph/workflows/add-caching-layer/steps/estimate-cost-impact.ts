import { z } from "zod";
import { MetricsSummary } from "../../../../core/metrics.js";
import { PRICES, PRICE_SOURCE, monthlyRequests, originMonthlyUsd, priceOf } from "../../../../tools/cost/prices.js";
import { defineStep } from "../../../step.js";
import { pct, usd } from "../format.js";
import { AnalyzeCurrentPerformance } from "./analyze-current-performance.js";
import { DesignCachingStrategy, Strategy } from "./design-caching-strategy.js";

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
