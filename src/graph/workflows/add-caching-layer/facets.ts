import { latestOutput, type WorkflowFacets } from "../module.js";
import { DesignCachingStrategy } from "./steps/design-caching-strategy.js";
import { EstimateCostImpact } from "./steps/estimate-cost-impact.js";
import { GeneratePerformanceReport } from "./steps/generate-performance-report.js";

/** The caching run as the fronts show it: its cost estimate and its before/after report. */
export const cachingFacets: WorkflowFacets = {
  cost(steps) {
    const e = latestOutput(steps, EstimateCostImpact);
    return e
      ? { addedMonthlyUsd: e.addedMonthlyUsd, savingsMonthlyUsd: e.originSavingsMonthlyUsd, netMonthlyUsd: e.netMonthlyUsd, savingsOf: "origin", basis: `${e.assumptions.join("; ")} (${e.priceSource})` }
      : null;
  },
  design(steps) {
    const s = latestOutput(steps, DesignCachingStrategy);
    return s ? `${s.cacheType} ${s.nodeType}, TTL ${s.ttlSeconds} s, key prefix ${s.keyPrefix}, rollout ${s.rolloutSteps.join(" -> ")}% (${[s.reason, ...s.notes].join("; ")}).` : null;
  },
  report: (steps) => latestOutput(steps, GeneratePerformanceReport)?.markdown ?? null,
};
