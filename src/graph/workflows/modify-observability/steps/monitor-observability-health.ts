import { z } from "zod";
import { MetricsSummary, Verdict } from "../../../../core/metrics.js";
import { observabilitySignal } from "../../../../tools/observability/signal.js";
import { monitorWindow } from "../../../patterns/monitor-window.js";
import { defineStep } from "../../../step.js";
import { Design } from "../design.js";
import { observabilityOf } from "../observability.js";
import { DesignObservabilityChanges } from "./design-observability-changes.js";
import { IdentifyObservabilityGap, Inventory } from "./identify-observability-gap.js";

const EMPTY = (at: string): MetricsSummary => ({ at, windowMinutes: 0, samples: 0, p95Ms: null, errorRate: null, hitRatio: null, requestsPerSecond: null, originRequestsPerSecond: null, monthlyCostUsd: null });

export const MonitorObservabilityHealth = defineStep({
  name: "MonitorObservabilityHealth",
  description: "Watch the window: scrape health, the changed rules loaded and evaluating without errors, no new rule evaluation failures, Honua's serving metrics; roll back on degradation",
  input: z.object({ inventory: Inventory, design: Design }),
  output: z.object({ window: MetricsSummary, verdict: Verdict, reason: z.string(), signals: z.array(z.object({ name: z.string(), verdict: Verdict, reason: z.string() })) }),
  prepare: (view) => ({ inventory: view.output(IdentifyObservabilityGap), design: view.output(DesignObservabilityChanges) }),
  async run(ctx, { inventory, design }) {
    const obs = observabilityOf(ctx.adapters, ctx.deployment);
    const rules = design.rules.filter((r) => r.action !== "remove").map((r) => r.name);
    const signal = observabilitySignal(obs, { down: inventory.targets.down, ruleEvaluationFailures: inventory.ruleEvaluationFailures, rules, metrics: design.metrics });
    const w = await monitorWindow(ctx, { minutes: ctx.deploymentConfig.monitoring.windowMinutes, baseline: inventory.baseline ?? EMPTY(ctx.adapters.clock.now().toISOString()), signals: [signal] });
    return {
      output: { window: w.window, verdict: w.verdict, reason: w.reason, signals: w.signals.map((s) => ({ name: s.name, verdict: s.verdict, reason: s.reason })) },
      verdict: w.verdict,
      reason: w.reason,
      metrics: { after: w.window },
    };
  },
});
