import { z } from "zod";
import { MetricsSummary } from "../../../../core/metrics.js";
import { Verdict } from "../../../../core/metrics.js";
import { databaseSignal } from "../../../../tools/database/signal.js";
import { monitorWindow } from "../../../patterns/monitor-window.js";
import { defineStep } from "../../../step.js";
import { databaseOf } from "../design.js";
import { AnalyzeCurrentSchema, SchemaSummary } from "./analyze-current-schema.js";

export const Watched = z.object({
  minutes: z.number(),
  verdict: Verdict,
  reason: z.string(),
  window: MetricsSummary.nullable(),
  signals: z.array(z.object({ name: z.string(), verdict: Verdict, reason: z.string(), figures: z.record(z.string(), z.number().nullable()) })),
  evidence: z.string().nullable(),
});

const mean = (xs: (number | null)[]): number | null => {
  const ok = xs.filter((x): x is number => x !== null);
  return ok.length ? Number((ok.reduce((a, b) => a + b, 0) / ok.length).toFixed(3)) : null;
};

export const MonitorDatabasePerformance = defineStep({
  name: "MonitorDatabasePerformance",
  description: "Watch query latency, lock waits, connections and replication lag (and Honua's serving metrics) for the monitoring window; roll back on degradation",
  input: z.object({ before: SchemaSummary }),
  output: Watched,
  prepare: (view) => ({ before: view.output(AnalyzeCurrentSchema) }),
  async run(ctx, { before }) {
    const db = databaseOf(ctx.adapters, ctx.deployment);
    const minutes = ctx.deploymentConfig.monitoring.windowMinutes;
    const signal = databaseSignal(db, { queryMs: mean(before.smoke.map((s) => s.ms)) });
    const baseline = before.baseline ?? { at: ctx.adapters.clock.now().toISOString(), windowMinutes: 60, samples: 0, p95Ms: null, errorRate: null, hitRatio: null, requestsPerSecond: null, originRequestsPerSecond: null, monthlyCostUsd: null };
    const w = await monitorWindow(ctx, { minutes, baseline, signals: [signal] });
    const output = { minutes, verdict: w.verdict, reason: w.reason, window: w.window ?? null, signals: w.signals, evidence: w.evidence };
    return { output, verdict: w.verdict === "healthy" ? undefined : w.verdict, reason: w.reason, metrics: { after: w.window } };
  },
});
