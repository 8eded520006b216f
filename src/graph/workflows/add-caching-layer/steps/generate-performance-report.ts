import { z } from "zod";
import { MetricsSummary } from "../../../../core/metrics.js";
import { defineStep } from "../../../step.js";
import { pct, usd } from "../format.js";
import { AnalyzeCurrentPerformance } from "./analyze-current-performance.js";
import { EstimateCostImpact } from "./estimate-cost-impact.js";
import { MonitorCachePerformance } from "./monitor-cache-performance.js";

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
