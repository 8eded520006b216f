import { z } from "zod";
import { MetricsSummary, Verdict } from "../../../../core/metrics.js";
import { metadataSignal } from "../../../../tools/metadata/signal.js";
import { catchUp } from "../../../../tools/metadata/sync.js";
import { monitorWindow } from "../../../patterns/monitor-window.js";
import { defineStep } from "../../../step.js";
import { metadataOf } from "../stores.js";
import { AnalyzeCurrentMetadataStore } from "./analyze-current-metadata-store.js";
import { SelectNewMetadataStore } from "./select-new-metadata-store.js";
import { Watch } from "./switch-read-traffic-gradually.js";
import { ValidateDataIntegrity } from "./validate-data-integrity.js";

export const MonitorNewStore = defineStep({
  name: "MonitorNewStore",
  description: "Watch the full window with every read on the new store: its read latency and errors and Honua's serving metrics; roll back on degradation",
  input: z.object({ watch: Watch, baseline: MetricsSummary }),
  output: z.object({ window: MetricsSummary, verdict: Verdict, reason: z.string(), newStore: z.object({ p95Ms: z.number().nullable(), errors: z.number().int(), reads: z.number().int() }).nullable(), applied: z.number().int() }),
  prepare: (view) => {
    const s = view.output(SelectNewMetadataStore);
    const v = view.output(ValidateDataIntegrity);
    return { watch: { kind: s.target.kind, capture: s.capture, queries: v.queries, newP95Ms: v.newP95Ms, config: s.readPath.config, rangeSize: Math.max(100, s.batchSize) }, baseline: view.output(AnalyzeCurrentMetadataStore).baseline };
  },
  async run(ctx, { watch: w, baseline }) {
    const cap = metadataOf(ctx.adapters, ctx.deployment);
    const signal = metadataSignal(w.kind, w.queries, w.newP95Ms);
    const win = await monitorWindow(ctx, { minutes: ctx.deploymentConfig.monitoring.windowMinutes, baseline, trafficShare: 100, signals: [signal] });
    // Writes still land on the old store until it is retired: the new one is kept level with it.
    const c = await catchUp(cap.source(), cap.target(w.kind), w.capture);
    return { output: { window: win.window, verdict: win.verdict, reason: win.reason, newStore: signal.last(), applied: c.applied }, verdict: win.verdict, reason: win.reason, metrics: { after: win.window } };
  },
});
