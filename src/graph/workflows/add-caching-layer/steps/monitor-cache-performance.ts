import { z } from "zod";
import { MetricsSummary, Verdict } from "../../../../core/metrics.js";
import { monitorWindow } from "../../../patterns/monitor-window.js";
import { defineStep } from "../../../step.js";
import { AnalyzeCurrentPerformance } from "./analyze-current-performance.js";
import { EnableCachingGradually } from "./enable-caching-gradually.js";

export const MonitorCachePerformance = defineStep({
  name: "MonitorCachePerformance",
  description: "Watch the full window (1 h in prod) at 100%; roll back automatically on degradation",
  input: z.object({ baseline: MetricsSummary, share: z.number().default(100) }),
  output: z.object({ window: MetricsSummary, verdict: Verdict, reason: z.string(), evidence: z.string().nullable() }),
  prepare: (view) => ({ baseline: view.output(AnalyzeCurrentPerformance).baseline, share: view.output(EnableCachingGradually).percent }),
  async run(ctx, { baseline, share }) {
    const { window, verdict, reason, evidence } = await monitorWindow(ctx, { minutes: ctx.deploymentConfig.monitoring.windowMinutes, baseline, trafficShare: share });
    return { output: { window, verdict, reason, evidence }, verdict, reason, metrics: { after: window } };
  },
});
